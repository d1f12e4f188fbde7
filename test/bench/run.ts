/**
 * `pnpm bench`: the admission benchmark (see README.md beside this file).
 *
 * One run, pinned to one core by `taskset`, measures:
 *   1. `egl.admit()` of the reference scenario (memory ledger, logger off): per-call latency p50/p99 of a sample of
 *      sequential calls after warm-up, and admissions/s sequentially and with 64 in flight;
 *   2. the floor: the same demo policy as a plain-JS function (no validation, sealing or ledger);
 *   3. casbin `enforceSync` and 4. Cedar (`@cedar-policy/cedar-wasm` `statefulIsAuthorized`) on equivalent policies,
 *      each parity-checked against EGL's allow/deny answers for the whole mix before it is timed;
 *   5. ledger appends/s: memory, SQLite single durable appends, SQLite group commit;
 *   6. chain verification records/s over ≥ 200k records, memory and SQLite.
 * Every figure is the median of REPS repetitions (default 5; `BENCH_REPS=n` to change). The table is printed and
 * written to `bench/results.md`.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs"
import { loadavg, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { Canonical, createGovernance, Envelope, type GovernanceInstance } from "@egl/core"
import { policy, registry } from "../../packages/core/test/fixtures/scenario.ts"
import { casbinArgs, makeCasbin } from "./casbin.ts"
import {
  concurrentAppends,
  fill,
  makeDrafts,
  openLedger,
  sequentialAppends,
  verifyRate,
  type OpenLedger
} from "./ledger.ts"
import { floorCheck, mix, toRequest } from "./mix.ts"
import { collect, fmtNs, fmtRate, fmtX, machineFacts, median, now, percentile, secondsSince } from "./stats.ts"

const REPS = Math.max(1, Number(process.env.BENCH_REPS ?? 5))
const LATENCY_SAMPLE = 10_000
const IN_FLIGHT = 64
const VERIFY_RECORDS = 200_000
const GROUP_COMMIT_APPENDS = 20_000
const started = now()
const log = (line = ""): void => console.log(line)

/** Share of one core this process got since `cpu0`/`wall0` (1 = it ran the whole time; less = it was preempted). */
const cpuShare = (cpu0: NodeJS.CpuUsage, wall0: bigint): number => {
  const u = process.cpuUsage(cpu0)
  return (u.user + u.system) / (Number(now() - wall0) / 1e3)
}
const loadAtStart = loadavg()[0]!

// ---------------------------------------------------------------------------------------------------------------------
// Machine facts
// ---------------------------------------------------------------------------------------------------------------------
const facts = machineFacts()
log(`# EGL admission benchmark`)
log()
log(
  `node ${facts.node} · ${facts.cpu} · ${facts.cores} logical CPUs · pinned to CPU ${facts.pinned} · gc exposed: ${facts.gc} · ${REPS} repetitions · load average ${loadAtStart.toFixed(2)}`
)
if (facts.pinned.includes(",") || facts.pinned.includes("-"))
  log(`warning: not pinned to a single core (run through \`pnpm bench\`, which uses taskset)`)
log()

// ---------------------------------------------------------------------------------------------------------------------
// Parity: every engine must give EGL's answers for the mix before it is timed
// ---------------------------------------------------------------------------------------------------------------------
const requests = mix.map(toRequest)
const M = requests.length
const eglConfig = () =>
  ({ registry, policy, ledger: "memory", ledgerOptions: { checkpointIntervalMs: 0 }, logger: false }) as const

const reference = await createGovernance(eglConfig())
const eglAnswers: Array<{ ok: boolean; codes: ReadonlyArray<string>; envelope?: Envelope.ExecutionEnvelope }> = []
for (const req of requests) {
  const r = await reference.admit(req)
  eglAnswers.push(
    r.envelope !== undefined
      ? { ok: r.ok, codes: r.reasonCodes, envelope: r.envelope }
      : { ok: r.ok, codes: r.reasonCodes }
  )
}
await reference.close()

const admittedCount = eglAnswers.filter((a) => a.ok).length
let expectedOk = 0
let floorDecisionOk = 0
let floorCodeOk = 0
let floorGrantOk = 0
for (let i = 0; i < M; i++) {
  const c = mix[i]!
  const e = eglAnswers[i]!
  if (c.expect === "ALLOW" ? e.ok : !e.ok && e.codes[0] === c.expect) expectedOk++
  const f = floorCheck(requests[i]!)
  if (f.ok === e.ok) floorDecisionOk++
  if (f.ok ? e.codes.includes(f.code) : e.codes[0] === f.code) floorCodeOk++
  if (f.ok && e.ok) {
    const g = e.envelope?.granted
    if (
      g !== undefined &&
      g.tier === f.tier &&
      Canonical.toCanonicalJsonSync(g.resources) === Canonical.toCanonicalJsonSync(f.resources)
    )
      floorGrantOk++
  }
}

const enforcer = await makeCasbin()
const casbinCalls = mix.map(casbinArgs)
const casbinParity = casbinCalls.filter((a, i) => enforcer.enforceSync(...a) === eglAnswers[i]!.ok).length

// Cedar runs in a child process (see cedar-child.ts); it inherits the CPU affinity set by taskset.
const cedarChild = ():
  | { readonly version: string; readonly answers: ReadonlyArray<boolean>; readonly ns: ReadonlyArray<number> }
  | string => {
  const here = dirname(fileURLToPath(import.meta.url))
  const child = spawnSync(
    process.execPath,
    ["--conditions=@egl/source", "--import", "tsx", join(here, "cedar-child.ts")],
    {
      cwd: join(here, ".."),
      env: { ...process.env, BENCH_REPS: String(REPS) },
      encoding: "utf8"
    }
  )
  if (child.status !== 0)
    return `cedar child exited with ${child.status ?? child.signal}: ${(child.stderr ?? "").trim().split("\n").slice(0, 3).join(" ")}`
  return JSON.parse(child.stdout.trim().split("\n").at(-1)!)
}
const cedar = cedarChild()
const cedarParity = typeof cedar === "string" ? 0 : cedar.answers.filter((a, i) => a === eglAnswers[i]!.ok).length
if (typeof cedar === "string") log(`- ${cedar}`)

const parityLines = [
  `mix: ${M} requests, ${admittedCount} admitted / ${M - admittedCount} denied by EGL`,
  `EGL vs the scenario's expected outcomes (SPEC §11): ${expectedOk}/${M}`,
  `floor vs EGL: allow/deny ${floorDecisionOk}/${M}, reason code ${floorCodeOk}/${M}, granted tier + resources ${floorGrantOk}/${admittedCount}`,
  `casbin vs EGL: allow/deny ${casbinParity}/${M}`,
  `cedar vs EGL: allow/deny ${cedarParity}/${M}`
]
log(`## Parity`)
for (const l of parityLines) log(`- ${l}`)
log()
const floorParity = floorDecisionOk === M && floorCodeOk === M && floorGrantOk === admittedCount
if (expectedOk !== M)
  throw new Error("EGL does not give the reference scenario's answers; fix that before benchmarking")

// ---------------------------------------------------------------------------------------------------------------------
// 1. EGL admission
// ---------------------------------------------------------------------------------------------------------------------
const sequentialFor = async (egl: GovernanceInstance, seconds: number): Promise<number> => {
  let i = 0
  const t0 = now()
  const deadline = t0 + BigInt(Math.round(seconds * 1e9))
  while (now() < deadline) await egl.admit(requests[i++ % M]!)
  return i / secondsSince(t0)
}

const inFlightFor = async (egl: GovernanceInstance, inFlight: number, seconds: number): Promise<number> => {
  let i = 0
  let done = 0
  const t0 = now()
  const deadline = t0 + BigInt(Math.round(seconds * 1e9))
  const worker = async () => {
    while (now() < deadline) {
      await egl.admit(requests[i++ % M]!)
      done++
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  return done / secondsSince(t0)
}

log(`## Measuring`)
const egl = {
  p50: [] as number[],
  p99: [] as number[],
  p999: [] as number[],
  p50Admitted: [] as number[],
  p50Denied: [] as number[],
  seq: [] as number[],
  inflight: [] as number[]
}
let ledgerCheck = ""
const eglCpu0 = process.cpuUsage()
const eglWall0 = now()
for (let rep = 0; rep < REPS; rep++) {
  const instance = await createGovernance(eglConfig())
  await sequentialFor(instance, rep === 0 ? 1.5 : 0.3) // warm-up (longer on the first repetition: JIT)
  collect()
  const samples = new Float64Array(LATENCY_SAMPLE)
  for (let i = 0; i < LATENCY_SAMPLE; i++) {
    const req = requests[i % M]!
    const t0 = process.hrtime.bigint()
    await instance.admit(req)
    samples[i] = Number(process.hrtime.bigint() - t0)
  }
  const admittedSamples = samples.filter((_, i) => eglAnswers[i % M]!.ok).sort()
  const deniedSamples = samples.filter((_, i) => !eglAnswers[i % M]!.ok).sort()
  samples.sort()
  egl.p50.push(percentile(samples, 50))
  egl.p99.push(percentile(samples, 99))
  egl.p999.push(percentile(samples, 99.9))
  egl.p50Admitted.push(percentile(admittedSamples, 50))
  egl.p50Denied.push(percentile(deniedSamples, 50))
  collect()
  egl.seq.push(await sequentialFor(instance, 1))
  collect()
  egl.inflight.push(await inFlightFor(instance, IN_FLIGHT, 1))
  if (rep === REPS - 1) {
    const report = await instance.verifyLedger()
    ledgerCheck = `last repetition's memory ledger: ${report.length} records, verify ${report.ok ? "ok" : "FAILED"}`
  }
  await instance.close()
  log(
    `- egl.admit rep ${rep + 1}/${REPS}: p50 ${fmtNs(egl.p50.at(-1)!)}, p99 ${fmtNs(egl.p99.at(-1)!)}, ${fmtRate(egl.seq.at(-1)!)} sequential, ${fmtRate(egl.inflight.at(-1)!)} with ${IN_FLIGHT} in flight`
  )
}
const eglShare = cpuShare(eglCpu0, eglWall0)
log(`- ${ledgerCheck}`)
collect()

// ---------------------------------------------------------------------------------------------------------------------
// 2–4. Floor, casbin, Cedar: synchronous checks, ns per check over the same mix
// ---------------------------------------------------------------------------------------------------------------------
let sink = 0
/** Runs `check(i)` in batches for about `seconds`: ns per check. */
const nsPerCheck = (check: (i: number) => boolean, batch: number, seconds: number): number => {
  let n = 0
  const t0 = now()
  const deadline = t0 + BigInt(Math.round(seconds * 1e9))
  while (now() < deadline) {
    for (let k = 0; k < batch; k++) if (check(n + k)) sink++
    n += batch
  }
  return Number(now() - t0) / n
}
const repeatChecks = (name: string, check: (i: number) => boolean, batch: number, seconds: number): Array<number> => {
  nsPerCheck(check, batch, seconds) // warm-up
  const out: Array<number> = []
  for (let rep = 0; rep < REPS; rep++) {
    collect()
    out.push(nsPerCheck(check, batch, seconds))
  }
  log(`- ${name}: ${out.map(fmtNs).join(", ")}`)
  return out
}

const checksCpu0 = process.cpuUsage()
const checksWall0 = now()
const floorNs = repeatChecks("floor", (i) => floorCheck(requests[i % M]!).ok, 100_000, 0.5)

// Informational: what sealing alone costs on top of the floor: the sealer's canonical form + SHA-256 of the envelope.
const sampleEnvelope = Envelope.unsealed(eglAnswers.find((a) => a.ok)!.envelope!)
const sealNs = repeatChecks(
  "floor + seal",
  (i) => {
    const d = floorCheck(requests[i % M]!)
    const form = Envelope.sealedForm({ ...sampleEnvelope, id: `e-${i}` })
    return d.ok && "snapshotId" in form && form.snapshotId.length === 64
  },
  2_000,
  0.5
)
const casbinNs =
  casbinParity === M
    ? repeatChecks("casbin enforceSync", (i) => enforcer.enforceSync(...casbinCalls[i % M]!), 10_000, 0.5)
    : []
const cedarNs = typeof cedar !== "string" && cedarParity === M ? [...cedar.ns] : []
if (cedarNs.length > 0)
  log(
    `- cedar statefulIsAuthorized (${typeof cedar !== "string" ? `cedar ${cedar.version}, ` : ""}own process): ${cedarNs.map(fmtNs).join(", ")}`
  )
if (sink < 0) log(String(sink)) // keeps the results observable
const checksShare = cpuShare(checksCpu0, checksWall0)
collect()

// ---------------------------------------------------------------------------------------------------------------------
// 5–6. Ledger
// ---------------------------------------------------------------------------------------------------------------------
const template = {
  body: Canonical.toCanonicalJsonSync(sampleEnvelope),
  id: sampleEnvelope.id,
  at: sampleEnvelope.decision.decidedAt
}
const drafts = makeDrafts(template, 0, GROUP_COMMIT_APPENDS)
const ledgerOptions = { checkpointIntervalMs: 0 }

const memCpu0 = process.cpuUsage()
const memWall0 = now()
const memAppend: Array<number> = []
{
  const mem = await openLedger("memory", ledgerOptions)
  await sequentialAppends(mem.ledger, drafts, 0.3)
  for (let rep = 0; rep < REPS; rep++) {
    collect()
    memAppend.push(await sequentialAppends(mem.ledger, drafts, 0.5))
  }
  await mem.close()
  log(`- memory appends: ${memAppend.map(fmtRate).join(", ")}`)
}
collect()

const memVerify: Array<number> = []
{
  const mem = await openLedger("memory", ledgerOptions)
  await fill(mem.ledger, template, VERIFY_RECORDS)
  const v = await verifyRate(mem.ledger, REPS)
  memVerify.push(...v.rates)
  await mem.close()
  log(`- memory verify (${v.report.length} records): ${memVerify.map(fmtRate).join(", ")}`)
}
const memShare = cpuShare(memCpu0, memWall0)
collect()

const sqliteSingle: Array<number> = []
const sqliteGroup: Array<number> = []
const sqliteVerify: Array<number> = []
let sqliteNote = ""
let sqliteRecords = 0
let groupBatch = 0
const dir = mkdtempSync(join(tmpdir(), "egl-bench-"))
let fsType = "unknown"
try {
  const t = statfsSync(dir).type
  fsType =
    t === 0x01021994
      ? "tmpfs (fsync is free: durability not measured)"
      : t === 0xef53
        ? "ext4"
        : t === 0x58465342
          ? "xfs"
          : t === 0x9123683e
            ? "btrfs"
            : `0x${t.toString(16)}`
} catch {
  // statfs unavailable
}
try {
  const { SqliteLedger } = await import("@egl/ledger-sqlite")
  let storage: { readonly commits: number } | undefined
  const open = (name: string): Promise<OpenLedger> =>
    openLedger(
      Effect.map(SqliteLedger.open(join(dir, name)), (s) => {
        storage = s
        return s
      }),
      ledgerOptions
    )
  const commitsNow = () => storage?.commits ?? 0
  {
    const single = await open("single.db")
    await sequentialAppends(single.ledger, drafts, 0.2)
    for (let rep = 0; rep < REPS; rep++) {
      collect()
      sqliteSingle.push(await sequentialAppends(single.ledger, drafts, 1))
    }
    await single.close()
    log(`- sqlite single durable appends: ${sqliteSingle.map(fmtRate).join(", ")}`)
  }
  collect()
  {
    const group = await open("group.db")
    await concurrentAppends(group.ledger, drafts.slice(0, 4096))
    const commits0 = commitsNow()
    for (let rep = 0; rep < REPS; rep++) {
      collect()
      sqliteGroup.push(await concurrentAppends(group.ledger, drafts))
    }
    groupBatch = (REPS * GROUP_COMMIT_APPENDS) / Math.max(1, commitsNow() - commits0)
    await group.close()
    log(
      `- sqlite group commit (${GROUP_COMMIT_APPENDS} concurrent appends): ${sqliteGroup.map(fmtRate).join(", ")}; ${groupBatch.toFixed(0)} records per transaction`
    )
  }
  collect()
  {
    const v = await open("verify.db")
    await fill(v.ledger, template, VERIFY_RECORDS)
    const r = await verifyRate(v.ledger, REPS)
    sqliteVerify.push(...r.rates)
    sqliteRecords = r.report.length
    await v.close()
    log(`- sqlite verify (${sqliteRecords} records): ${sqliteVerify.map(fmtRate).join(", ")}`)
  }
} catch (e) {
  sqliteNote = `not measured: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`
  log(`- sqlite ${sqliteNote}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
log()

// ---------------------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------------------
type Row = readonly [measurement: string, median: string, spread: string, target: string, verdict: string]
const rows: Array<Row> = []
const verdict = (pass: boolean): string => (pass ? "PASS" : "**MISS**")
const spreadNs = (xs: ReadonlyArray<number>) =>
  xs.length > 1 ? `${fmtNs(Math.min(...xs))} – ${fmtNs(Math.max(...xs))}` : ""
const spreadRate = (xs: ReadonlyArray<number>) =>
  xs.length > 1 ? `${fmtRate(Math.min(...xs))} – ${fmtRate(Math.max(...xs))}` : ""

const p50 = median(egl.p50)
const p99 = median(egl.p99)
const seq = median(egl.seq)
const inflight = median(egl.inflight)
const eglMeanNs = 1e9 / seq
const floor = median(floorNs)
const casbin = casbinNs.length > 0 ? median(casbinNs) : NaN
const cedarMed = cedarNs.length > 0 ? median(cedarNs) : NaN

rows.push([
  "EGL `admit()` latency p50 (memory ledger, sequential awaits)",
  fmtNs(p50),
  spreadNs(egl.p50),
  "≤ 10 µs",
  verdict(p50 <= 10_000)
])
rows.push(["EGL `admit()` latency p99", fmtNs(p99), spreadNs(egl.p99), "≤ 50 µs", verdict(p99 <= 50_000)])
rows.push(["EGL `admit()` latency p99.9", fmtNs(median(egl.p999)), spreadNs(egl.p999), "", ""])
rows.push([
  "EGL `admit()` p50 admitted / p50 denied",
  `${fmtNs(median(egl.p50Admitted))} / ${fmtNs(median(egl.p50Denied))}`,
  "",
  "",
  ""
])
rows.push(["EGL admissions/s, sequential loop", fmtRate(seq), spreadRate(egl.seq), "≥ 80k/s", verdict(seq >= 80_000)])
rows.push([
  `EGL admissions/s, ${IN_FLIGHT} in flight`,
  fmtRate(inflight),
  spreadRate(egl.inflight),
  "≥ 80k/s",
  verdict(inflight >= 80_000)
])
rows.push([
  "floor: plain-JS check of the demo policy",
  fmtNs(floor),
  spreadNs(floorNs),
  "",
  floorParity ? "" : "parity FAILED"
])
rows.push([
  "floor + seal (the sealer: canonical form + SHA-256 of the ~1.1 KB envelope; informational)",
  fmtNs(median(sealNs)),
  spreadNs(sealNs),
  "",
  ""
])
rows.push([
  "casbin `enforceSync` (RBAC + ABAC matcher)",
  casbinNs.length > 0 ? fmtNs(casbin) : "not timed (parity failed)",
  spreadNs(casbinNs),
  "",
  ""
])
rows.push([
  "cedar-wasm `statefulIsAuthorized` (preparsed policy set)",
  cedarNs.length > 0 ? fmtNs(cedarMed) : typeof cedar === "string" ? cedar : "not timed (parity failed)",
  spreadNs(cedarNs),
  "",
  ""
])
rows.push(["ratio: EGL admit p50 / floor", fmtX(p50 / floor), "", "", ""])
rows.push([
  "ratio: EGL admit (mean, 1 / sequential rate) / casbin",
  casbinNs.length > 0 ? fmtX(eglMeanNs / casbin) : "n/a",
  "",
  "≤ 1× (no slower than casbin)",
  casbinNs.length > 0 ? verdict(eglMeanNs <= casbin) : "n/a"
])
rows.push(["ratio: EGL admit (mean) / cedar", cedarNs.length > 0 ? fmtX(eglMeanNs / cedarMed) : "n/a", "", "", ""])
rows.push([
  "memory ledger appends/s (sequential, through the service)",
  fmtRate(median(memAppend)),
  spreadRate(memAppend),
  "",
  ""
])
if (sqliteNote === "") {
  rows.push([
    "SQLite single durable appends/s (each awaited)",
    fmtRate(median(sqliteSingle)),
    spreadRate(sqliteSingle),
    "",
    ""
  ])
  rows.push([
    `SQLite group commit records/s (${GROUP_COMMIT_APPENDS.toLocaleString("en")} concurrent appends; ${groupBatch.toFixed(0)} records per transaction)`,
    fmtRate(median(sqliteGroup)),
    spreadRate(sqliteGroup),
    "≥ 100k/s",
    verdict(median(sqliteGroup) >= 100_000)
  ])
} else {
  rows.push(["SQLite appends", sqliteNote, "", "≥ 100k/s (group commit)", "not measured"])
}
rows.push([
  `verify records/s, memory (${VERIFY_RECORDS.toLocaleString("en")} records)`,
  fmtRate(median(memVerify)),
  spreadRate(memVerify),
  "≥ 300k/s",
  verdict(median(memVerify) >= 300_000)
])
if (sqliteNote === "") {
  rows.push([
    `verify records/s, SQLite (${sqliteRecords.toLocaleString("en")} records)`,
    fmtRate(median(sqliteVerify)),
    spreadRate(sqliteVerify),
    "≥ 300k/s",
    verdict(median(sqliteVerify) >= 300_000)
  ])
} else {
  rows.push(["verify records/s, SQLite", sqliteNote, "", "≥ 300k/s", "not measured"])
}

const table = [
  `| measurement | median of ${REPS} | min – max | target | verdict |`,
  `|---|---:|---:|---|---|`,
  ...rows.map((r) => `| ${r.join(" | ")} |`)
].join("\n")

const when = new Date().toISOString()
const elapsed = secondsSince(started)
const report = [
  `# EGL admission benchmark — results`,
  ``,
  `Measured ${when} by \`pnpm bench\` in ${elapsed.toFixed(0)} s.`,
  ``,
  `Machine: ${facts.cpu}, ${facts.cores} logical CPUs, pinned to CPU ${facts.pinned} (taskset); node ${facts.node}; ` +
    `gc between phases: ${facts.gc ? "yes" : "no"}; SQLite temp dir on ${fsType}.`,
  ``,
  `Contention: 1-minute load average ${loadAtStart.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at the end; this process got ` +
    `${(100 * eglShare).toFixed(0)} % of its core during the EGL phase, ${(100 * checksShare).toFixed(0)} % during the floor/casbin phase ` +
    `and ${(100 * memShare).toFixed(0)} % during the memory-ledger phase` +
    `${Math.min(eglShare, checksShare, memShare) < 0.9 ? " — **the core was shared with other work: those figures are pessimistic**" : ""}. ` +
    `SQLite phases wait on fsync, so their CPU share says nothing about contention; the disk is shared too.`,
  ``,
  `Parity (checked before timing):`,
  ``,
  ...parityLines.map((l) => `- ${l}`),
  `- ${ledgerCheck}`,
  ``,
  table,
  ``
].join("\n")

log(table)
log()
log(
  `CPU share of the pinned core: EGL phase ${(100 * eglShare).toFixed(0)} %, checks phase ${(100 * checksShare).toFixed(0)} %, memory-ledger phase ${(100 * memShare).toFixed(0)} %; load average ${loadAtStart.toFixed(2)} → ${loadavg()[0]!.toFixed(2)}`
)
log(`finished in ${elapsed.toFixed(0)} s; written to bench/results.md`)
// Formatted as the repository's Prettier would (so `pnpm lint` stays clean); as printed when Prettier is unavailable.
const resultsFile = join(dirname(fileURLToPath(import.meta.url)), "results.md")
let formatted = report
try {
  const prettier = await import("prettier")
  formatted = await prettier.format(report, { ...(await prettier.resolveConfig(resultsFile)), parser: "markdown" })
} catch {
  // keep the unformatted report
}
writeFileSync(resultsFile, formatted)
