/**
 * Where a governed request's time goes, without HTTP (part of the adapter benchmark's analysis, not of its run):
 *
 *   cd test && taskset -c 1 node --expose-gc --conditions=@egl/source --import tsx bench/adapter-phases.ts [seconds=5]
 *
 * On the benchmark's governance (demo registry, policy and identity, memory ledger, logger off) it replays, for the
 * benchmark's request, the steps `Gate.route(...).enter()` and `entry.finish()` take, timing each with
 * `process.hrtime.bigint()`: identity (bearer token → subject), body decode (the route's Schema) + mapping, admission,
 * dispatch (re-verification and use of the grant), taking the pool slot, and completion (output digest, the execution
 * record). `Gate` runs admission and dispatch in one runtime run; here they are two, to split them, so the sum is a
 * little above the gate's own path, which is timed as a whole too (`enter` + `finish`). Means per request, median of 5
 * repetitions of `seconds / 5` each after a warm-up (and a wait of up to 2 minutes for both cores to be idle).
 */
import { createHash } from "node:crypto"
import { Effect, Exit, Schema } from "effect"
import { Admission, Canonical, createGovernance, Gate, Identity, IsolationRouter } from "@egl/core"
import { Demo, DeployModel } from "@egl/serving-api"
import { BODY, HEADERS, reply } from "./adapter-request.ts"
import { waitForQuiet } from "./adapter-load.ts"
import { collect, median } from "./stats.ts"

const seconds = Number(process.argv[2] ?? 5)
const REPS = 5
/** A fresh governance instance (a fresh memory ledger: the server of a benchmark run holds ~20 k records at most). */
const fresh = () =>
  createGovernance({
    registry: Demo.registry,
    policy: Demo.policy,
    ledger: "memory",
    logger: false
  })
type GovernanceInstance = Awaited<ReturnType<typeof fresh>>
const identity = Identity.fromBearerToken(Demo.apiKeys)
const headers = Object.fromEntries(Object.entries(HEADERS))
const decode = Schema.decodeUnknownExit(DeployModel.DeployModelBody)
const [tool, action] = DeployModel.ACTION.split(".") as [string, string]

const PHASES = ["identity", "decode + map", "admit", "dispatch", "pool slot", "handler", "complete"] as const
type Phase = (typeof PHASES)[number]

/** One governed request, step by step as the gate takes it; adds each step's nanoseconds to `acc`. */
const stepwise = async (governance: GovernanceInstance, acc: Record<Phase, number>): Promise<void> => {
  const runtime = governance.runtime
  const body = JSON.parse(JSON.stringify(BODY)) as unknown
  let t = process.hrtime.bigint()
  const lap = (phase: Phase) => {
    const n = process.hrtime.bigint()
    acc[phase] += Number(n - t)
    t = n
  }
  const subject = await Identity.resolve(identity, Identity.fromNodeHeaders(headers))
  if ("_tag" in subject) throw new Error("identity refused")
  lap("identity")
  const decoded = decode(body)
  if (Exit.isFailure(decoded)) throw new Error("body refused")
  const parts = DeployModel.toAdmission({ body: decoded.value })
  lap("decode + map")
  const admitted = await runtime.runPromise(
    Admission.Admission.use((a) => a.admit({ ...parts, tool, action, subject }))
  )
  lap("admit")
  const envelope = admitted.envelope
  await runtime.runPromise(Admission.Admission.use((a) => a.dispatch(envelope)))
  lap("dispatch")
  // The slot: a task that holds the pool until the handler is done (as Gate's acquireSlot does).
  let release!: () => void
  const done = new Promise<void>((resolve) => (release = resolve))
  let held!: () => void
  const holding = new Promise<void>((resolve) => (held = resolve))
  const task = Effect.suspend(() => {
    held()
    return Effect.promise(() => done)
  })
  const run = runtime.runPromiseExit(
    IsolationRouter.IsolationRouter.use((r) => r.run(envelope.granted!.pool as IsolationRouter.PoolName, task))
  )
  await holding
  lap("pool slot")
  const output = JSON.parse(JSON.stringify(reply(decoded.value))) as unknown
  lap("handler")
  release()
  const digest = createHash("sha256").update(Canonical.toCanonicalJsonSync(output)).digest("hex")
  const result = await governance.complete(envelope, {
    status: "completed",
    statusCode: 200,
    durationMs: 0.1,
    outputDigest: digest
  })
  if (!result.ok) throw new Error("complete failed")
  await run
  lap("complete")
}

const routeOf = (governance: GovernanceInstance) =>
  Gate.route(Gate.make({ governance, identity }), DeployModel.ACTION, DeployModel.deployModelRoute)
/** One governed request through the gate itself: `enter` then `finish`; adds their nanoseconds to `acc`. */
const whole = async (route: Gate.Route, acc: { enter: number; finish: number }): Promise<void> => {
  const body = JSON.parse(JSON.stringify(BODY)) as unknown
  const t0 = process.hrtime.bigint()
  const entry = await route.enter(Identity.fromNodeHeaders(headers), body, undefined)
  const t1 = process.hrtime.bigint()
  if (!entry.ok) throw new Error(`refused: ${entry.problem.title}`)
  const output = JSON.parse(JSON.stringify(reply(body as never))) as unknown
  const t2 = process.hrtime.bigint()
  const problem = await entry.finish({ statusCode: 200, output })
  const t3 = process.hrtime.bigint()
  if (problem !== undefined) throw new Error("finish failed")
  acc.enter += Number(t1 - t0)
  acc.finish += Number(t3 - t2)
}

const zero = (): Record<Phase, number> => Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<Phase, number>
const forSeconds = async (s: number, body: () => Promise<void>): Promise<number> => {
  const deadline = performance.now() + s * 1000
  let n = 0
  while (performance.now() < deadline) {
    await body()
    n++
  }
  return n
}

// Warm-up (JIT) of both paths, on a throwaway instance.
{
  const g = await fresh()
  const route = routeOf(g)
  await forSeconds(1.5, () => stepwise(g, zero()))
  await forSeconds(1.5, () => whole(route, { enter: 0, finish: 0 }))
  await g.close()
}

const waited = await waitForQuiet(120)
const cpu0 = process.cpuUsage()
const wall0 = performance.now()
const perPhase: Record<Phase, Array<number>> = Object.fromEntries(PHASES.map((p) => [p, []])) as never
const sums: Array<number> = []
const enters: Array<number> = []
const finishes: Array<number> = []
let records = 0
let verified = true
for (let rep = 0; rep < REPS; rep++) {
  // Each repetition on a fresh instance, warmed up briefly, both paths interleaved on the same ledger.
  const g = await fresh()
  const route = routeOf(g)
  await forSeconds(0.2, () => stepwise(g, zero()))
  await forSeconds(0.2, () => whole(route, { enter: 0, finish: 0 }))
  collect()
  const acc = zero()
  const n = await forSeconds(seconds / REPS / 2, () => stepwise(g, acc))
  for (const p of PHASES) perPhase[p].push(acc[p] / n / 1e3)
  sums.push(PHASES.reduce((s, p) => s + acc[p], 0) / n / 1e3)
  collect()
  const w = { enter: 0, finish: 0 }
  const m = await forSeconds(seconds / REPS / 2, () => whole(route, w))
  enters.push(w.enter / m / 1e3)
  finishes.push(w.finish / m / 1e3)
  const report = await g.verifyLedger()
  records = Math.max(records, report.length)
  verified &&= report.ok
  await g.close()
}

const cpu = process.cpuUsage(cpu0)
const share = (cpu.user + cpu.system) / ((performance.now() - wall0) * 1e3)
const us = (x: number) => `${x.toFixed(1)} µs`
console.log(
  `governed request without HTTP: mean per request, median of ${REPS} repetitions; this process got ${(100 * share).toFixed(0)} % of its core (waited ${waited.toFixed(0)} s for idle cores first)`
)
console.log(`| phase | µs |`)
console.log(`|---|---:|`)
for (const p of PHASES) console.log(`| ${p} | ${us(median(perPhase[p]))} |`)
console.log(`| **sum of the steps** | ${us(median(sums))} |`)
console.log(`| Gate \`enter\` (identity → pool slot, one run for admit + dispatch) | ${us(median(enters))} |`)
console.log(`| Gate \`finish\` (complete) | ${us(median(finishes))} |`)
console.log(`| **Gate enter + finish** | ${us(median(enters) + median(finishes))} |`)
console.log(`ledgers: up to ${records} records per repetition, all verified: ${verified ? "yes" : "NO"}`)
