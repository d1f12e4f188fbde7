/**
 * The distributed tier pools with real processes: this test process is the API instance (it admits and submits), and
 * tier workers run as child processes (`node --conditions=@egl/source --import tsx`), each with its own governance
 * instance on one shared SQLite ledger and one shared Redis grant store.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import type { Readable } from "node:stream"
import { fileURLToPath } from "node:url"
import { createGovernance, Sealer, type Envelope, type GovernanceInstance, type Ledger } from "@egl/core"
import { SqliteLedger } from "@egl/ledger-sqlite"
import { RedisGrantStore, TierQueues } from "@egl/redis"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { policy, registry, request } from "./support/scenario.ts"

const REDIS_URL = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
const childScript = join(dirname(fileURLToPath(import.meta.url)), "support", "tierWorkerChild.ts")
const id = randomUUID().slice(0, 8)
const queuePrefix = `egl-test-dist-${id}`
const grantPrefix = `egl-test-dist-grants-${id}:`
const keys = Sealer.generateKeyPair()
const dir = mkdtempSync(join(tmpdir(), "egl-distributed-"))
const ledgerPath = join(dir, "ledger.db")

type Child = ChildProcessByStdio<null, Readable, null>
interface Worker {
  readonly proc: Child
  readonly identity: string
}

/** Starts a worker process and resolves once it takes jobs. */
const startWorker = (tier: number, concurrency?: number): Promise<Worker> =>
  new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--conditions=@egl/source", "--import", "tsx", childScript], {
      cwd: dirname(childScript),
      env: {
        ...process.env,
        REDIS_URL,
        EGL_LEDGER: ledgerPath,
        EGL_TEST_PRIVATE_KEY: keys.privateKeyPem,
        EGL_TIER: String(tier),
        EGL_QUEUE_PREFIX: queuePrefix,
        EGL_GRANT_PREFIX: grantPrefix,
        ...(concurrency !== undefined ? { EGL_CONCURRENCY: String(concurrency) } : {})
      },
      stdio: ["ignore", "pipe", "inherit"]
    })
    let out = ""
    const timer = setTimeout(() => reject(new Error(`worker t${tier} did not start: ${out}`)), 30_000)
    proc.stdout.setEncoding("utf8")
    proc.stdout.on("data", (chunk: string) => {
      out += chunk
      const m = /^ready (\S+)$/m.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve({ proc, identity: m[1]! })
      }
    })
    proc.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`worker t${tier} exited with ${code}: ${out}`))
    })
  })

const stop = (w: Worker) =>
  new Promise<number | null>((resolve) => {
    if (w.proc.exitCode !== null) return resolve(w.proc.exitCode)
    w.proc.removeAllListeners("exit")
    w.proc.once("exit", (code) => resolve(code))
    w.proc.kill("SIGTERM")
  })

let api: GovernanceInstance
let grants: RedisGrantStore.RedisGrantStore
let queues: TierQueues.TierQueues
const workers: Record<string, Worker> = {}

beforeAll(async () => {
  grants = RedisGrantStore.make({ prefix: grantPrefix })
  api = await createGovernance({
    registry,
    policy,
    keys: { privateKeyPem: keys.privateKeyPem },
    ledger: { storage: SqliteLedger.open(ledgerPath) },
    ledgerOptions: { checkpointIntervalMs: 0 },
    grants
  })
  queues = TierQueues.make({ prefix: queuePrefix, timeoutMs: 15_000 })
  const t0 = performance.now()
  const [t2a, t2b, t3a, t3b] = await Promise.all([startWorker(2, 1), startWorker(2, 1), startWorker(3), startWorker(3)])
  Object.assign(workers, { t2a, t2b, t3a, t3b })
  console.log(`4 worker processes started in ${(performance.now() - t0).toFixed(0)} ms`)
  expect(await queues.ready(5000)).toBe(true)
}, 60_000)

afterAll(async () => {
  const codes = await Promise.all(Object.values(workers).map(stop))
  await queues?.close()
  await api?.close()
  await grants?.close()
  const redis = new Redis(REDIS_URL)
  for (const pattern of [`${queuePrefix}:*`, `${grantPrefix}*`]) {
    let cursor = "0"
    do {
      const [next, found] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      cursor = next
      if (found.length > 0) await redis.del(...found)
    } while (cursor !== "0")
  }
  redis.disconnect()
  rmSync(dir, { recursive: true, force: true })
  expect(codes.every((c) => c === 0)).toBe(true)
}, 30_000)

const admit = async (action: string, input: unknown) => {
  const admitted = await api.admit(request(action, input))
  if (!admitted.ok) throw new Error(`expected an admission, got ${admitted.reasonCodes.join(",")}`)
  return admitted.envelope
}

/** Records about an envelope in the shared ledger, read by the API process. */
const history = async (envelopeId: string) => {
  const { size } = await api.head()
  // The API's head only knows its own appends; read past it to see the workers' records too.
  const records = (await api.records(0, size + 10_000)) as ReadonlyArray<Ledger.LedgerRecord>
  return records
    .filter((r) => r.ref === envelopeId)
    .map((r) => {
      const body = JSON.parse(r.body) as Record<string, string>
      return { kind: r.kind, type: body["type"], phase: body["phase"], worker: body["worker"] }
    })
}

interface Output {
  readonly pid: number
  readonly tier: number
  readonly startedAt: number
  readonly endedAt: number
}

describe("tier pools across processes", () => {
  it("a worker process verifies, runs and records; the API process returns its result", async () => {
    const envelope = await admit("network", { hello: "world" })
    const t0 = performance.now()
    const result = await queues.submit<Output>(envelope, { hello: "world" })
    const ms = performance.now() - t0
    if (!result.ok) throw new Error(`expected a result, got ${result.code}: ${result.error.message}`)
    expect([workers["t2a"]!.identity, workers["t2b"]!.identity]).toContain(result.worker)
    expect([workers["t2a"]!.proc.pid, workers["t2b"]!.proc.pid]).toContain(result.output.pid)
    expect(result.output.pid).not.toBe(process.pid)
    expect(await history(envelope.id)).toEqual([
      { kind: "decision", type: undefined, phase: undefined, worker: undefined },
      { kind: "execution", type: undefined, phase: "dispatched", worker: result.worker },
      { kind: "execution", type: undefined, phase: "completed", worker: result.worker }
    ])
    console.log(`cross-process round trip: ${ms.toFixed(1)} ms`)
  })

  it("a grant used by a worker process is used everywhere: resubmitting or dispatching it is GRANT_REUSED", async () => {
    const envelope = await admit("network", { once: true })
    expect(await queues.submit(envelope, { once: true })).toMatchObject({ ok: true })
    const again = await queues.submit(envelope, { once: true })
    expect(!again.ok && again.error).toMatchObject({ _tag: "DispatchRefused", code: "GRANT_REUSED" })
    const local = await api.dispatch(envelope)
    expect(!local.ok && local.error).toMatchObject({ _tag: "GrantRejected", code: "GRANT_REUSED" })
    expect((await history(envelope.id)).filter((r) => r.kind === "incident").map((r) => r.type)).toEqual([
      "GRANT_REUSED",
      "GRANT_REUSED"
    ])
  })

  it("a forged envelope is refused by the worker process and the incident is in the shared ledger", async () => {
    const envelope = await admit("network", { forged: true })
    const forged: Envelope.ExecutionEnvelope = { ...envelope, granted: { ...envelope.granted!, tier: 3 } }
    const result = await queues.submit(forged, { forged: true })
    expect(!result.ok && result.error).toMatchObject({ _tag: "DispatchRefused", code: "ENVELOPE_INVALID" })
    expect((await history(envelope.id)).map((r) => r.type ?? r.kind)).toEqual(["decision", "ENVELOPE_INVALID"])
  })

  it("two tier-3 worker processes still run one job at a time; two tier-2 ones run in parallel", async () => {
    const spans = async (action: string, n: number) => {
      const envelopes = await Promise.all(Array.from({ length: n }, (_, i) => admit(action, { slowMs: 150, i })))
      const results = await Promise.all(envelopes.map((e, i) => queues.submit<Output>(e, { slowMs: 150, i })))
      return results.map((r) => {
        if (!r.ok) throw new Error(`expected a result, got ${r.code}`)
        return r.output
      })
    }
    const overlaps = (outputs: ReadonlyArray<Output>) => {
      const sorted = [...outputs].sort((a, b) => a.startedAt - b.startedAt)
      return sorted.some((o, i) => i > 0 && o.startedAt < sorted[i - 1]!.endedAt)
    }
    const t3 = await spans("privileged", 6)
    expect(overlaps(t3)).toBe(false)
    expect(t3.every((o) => o.tier === 3)).toBe(true)
    const t2 = await spans("network", 6)
    expect(overlaps(t2)).toBe(true)
    expect(new Set(t2.map((o) => o.pid)).size).toBe(2)
    console.log(
      `tier 3 across ${new Set(t3.map((o) => o.pid)).size} process(es): no overlap; tier 2 across 2 processes: overlap`
    )
  })

  it("the shared ledger verifies, with the checkpoints of every process", async () => {
    const report = await api.verifyLedger()
    expect(report.ok).toBe(true)
  })
})
