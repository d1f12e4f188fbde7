import { IsolationRouter } from "@egl/core"
import { Queue } from "bullmq"
import { afterEach, describe, expect, it } from "vitest"
import { TierQueues, TierWorker } from "../src/index.ts"
import { eventually, history, policy, REDIS_URL, request } from "./support/fixtures.ts"
import { harness } from "./support/pools.ts"
import { closedPort, startProxy } from "./support/proxy.ts"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})
const setup = async (options?: Parameters<typeof harness>[0]) => {
  const h = await harness(options)
  cleanups.push(h.close)
  expect(await h.queues.ready(5000)).toBe(true)
  return h
}

describe("TierQueues + TierWorker", () => {
  it("runs an admitted job on its tier's worker, records dispatch and outcome, returns the result", async () => {
    const h = await setup()
    const worker = await h.startWorker(2)
    expect(worker).toMatchObject({ tier: 2, pool: "pool-t2", queue: "egl-pool-t2", concurrency: 16 })
    expect(worker.worker).toMatch(/\/\d+\/pool-t2$/)

    const envelope = await h.admit("network", { url: "https://example.org" })
    expect(envelope.granted?.pool).toBe("pool-t2")
    const t0 = performance.now()
    const result = await h.queues.submit(envelope, { url: "https://example.org" })
    const roundTrip = performance.now() - t0
    if (!result.ok) throw new Error(`expected a result, got ${result.code}: ${result.error.message}`)
    expect(result.output).toEqual({ echo: { url: "https://example.org" }, tier: 2, by: worker.worker })
    expect(result.worker).toBe(worker.worker)

    const records = await history(h.egl, envelope.id)
    expect(records.map((r) => r.phase ?? r.kind)).toEqual(["decision", "dispatched", "completed"])
    expect(records[1]!.worker).toBe(worker.worker)
    expect(records[2]).toMatchObject({ worker: worker.worker, index: result.ledger.index, hash: result.ledger.hash })
    expect(worker.stats).toEqual({ completed: 1, failed: 0, refused: {} })
    expect((await h.egl.verifyLedger()).ok).toBe(true)

    // Round trips after the first (connections and scripts warm).
    const times: Array<number> = []
    for (let i = 0; i < 20; i++) {
      const e = await h.admit("network", { i })
      const s = performance.now()
      expect((await h.queues.submit(e, { i })).ok).toBe(true)
      times.push(performance.now() - s)
    }
    times.sort((a, b) => a - b)
    console.log(
      `tier queue round trip (enqueue → worker verify/dispatch/run/complete → result): first ${roundTrip.toFixed(1)} ms, ` +
        `p50 ${times[10]!.toFixed(1)} ms, max ${times[19]!.toFixed(1)} ms`
    )
  })

  it("each worker takes only its tier's jobs: a tier-2 worker never receives a tier-3 job", async () => {
    const h = await setup()
    await h.startWorker(2)
    const t2 = await h.admit("network", { n: 1 })
    const t3 = await h.admit("privileged", { n: 2 })
    expect(t3.granted?.pool).toBe("pool-t3")

    // No tier-3 worker yet: the tier-3 job waits on its own queue, and the tier-2 worker does not touch it.
    const pending = h.queues.submit(t3, { n: 2 }, { timeoutMs: 4000 })
    expect(await h.queues.submit(t2, { n: 1 })).toMatchObject({ ok: true })
    await new Promise((r) => setTimeout(r, 300))
    expect(h.calls.log).toEqual(['pool-t2 network {"n":1}'])

    await h.startWorker(3)
    const late = await pending
    expect(late).toMatchObject({ ok: true, output: { tier: 3 } })
    expect(h.calls.log).toEqual(['pool-t2 network {"n":1}', 'pool-t3 privileged {"n":2}'])

    // Every tier to its own worker.
    await h.startWorker(0)
    await h.startWorker(1)
    for (const [action, tier] of [
      ["transform", 0],
      ["file", 1],
      ["network", 2],
      ["privileged", 3]
    ] as const) {
      const e = await h.admit(action, { action })
      const r = await h.queues.submit(e, { action })
      expect(r.ok && r.worker.endsWith(`/pool-t${tier}`)).toBe(true)
    }
    expect(h.queues.status().map((s) => s.queue)).toEqual(["egl-pool-t0", "egl-pool-t1", "egl-pool-t2", "egl-pool-t3"])
  })

  it("tier 3 runs one job at a time, even with concurrency asked and two tier-3 workers", async () => {
    const h = await setup()
    const a = await h.startWorker(3, { concurrency: 8 })
    const b = await h.startWorker(3, { concurrency: 8, worker: "second-host/1/pool-t3" })
    expect([a.concurrency, b.concurrency]).toEqual([1, 1])
    // The limit lives in Redis, beside the queue, so it binds every tier-3 worker of the fleet.
    const probe = new Queue(TierQueues.queueName(3), { connection: { url: REDIS_URL }, prefix: h.prefix })
    expect(await probe.getGlobalConcurrency()).toBe(1)
    await probe.close()
    const envelopes = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => h.admit("privileged", { slowMs: 120, i })))
    const t0 = performance.now()
    const results = await Promise.all(envelopes.map((e, i) => h.queues.submit(e, { slowMs: 120, i })))
    const elapsed = performance.now() - t0
    expect(results.every((r) => r.ok)).toBe(true)
    expect(h.calls.maxInFlight).toBe(1)
    expect(elapsed).toBeGreaterThanOrEqual(6 * 120)
    const byWorker = new Set(results.map((r) => (r.ok ? r.worker : "")))
    console.log(`tier 3: 6 × 120 ms jobs on ${byWorker.size} worker(s) took ${elapsed.toFixed(0)} ms, max in flight 1`)

    // The same measurement at tier 2 does see parallelism, so the probe works.
    h.calls.maxInFlight = 0
    await h.startWorker(2, { concurrency: 4 })
    const t2 = await Promise.all([0, 1, 2, 3].map((i) => h.admit("network", { slowMs: 120, i })))
    await Promise.all(t2.map((e, i) => h.queues.submit(e, { slowMs: 120, i })))
    expect(h.calls.maxInFlight).toBeGreaterThan(1)
  })

  it("a failing handler is recorded as failed and surfaces as ExecutionFailed", async () => {
    const h = await setup()
    const worker = await h.startWorker(1)
    const envelope = await h.admit("file", { fail: "disk full" })
    const result = await h.queues.submit(envelope, { fail: "disk full" })
    expect(!result.ok && result.error).toBeInstanceOf(TierQueues.ExecutionFailed)
    expect(!result.ok && result.code).toBe("EXECUTION_FAILED")
    expect(!result.ok && result.error.message).toMatch(/disk full/)
    expect((await history(h.egl, envelope.id)).map((r) => r.phase ?? r.kind)).toEqual([
      "decision",
      "dispatched",
      "failed"
    ])
    expect(worker.stats.failed).toBe(1)
  })

  it("refuses to submit what is not an admitted, worker-bound envelope with its admitted input", async () => {
    const h = await setup()
    const envelope = await h.admit("network", { a: 1 })
    const wrongInput = await h.queues.submit(envelope, { a: 2 })
    expect(!wrongInput.ok && wrongInput.error).toBeInstanceOf(TierQueues.SubmissionInvalid)
    const denied = await h.egl.admit({ ...(await import("./support/fixtures.ts")).request("network", {}, ["viewer"]) })
    expect(denied.ok).toBe(false)
    const refused = await h.queues.submit(denied.envelope!, {})
    expect(!refused.ok && refused.code).toBe("INVALID_REQUEST")
    const cached = { ...envelope, granted: { ...envelope.granted!, pool: "cache" } }
    expect((await h.queues.submit(cached, { a: 1 })).ok).toBe(false)
    // Nothing was enqueued: the grant is still unused.
    await h.startWorker(2)
    expect(await h.queues.submit(envelope, { a: 1 })).toMatchObject({ ok: true })
  })

  it("no answer in time is a ResultTimeout; a worker that comes later does not run the job", async () => {
    const h = await setup()
    const envelope = await h.admit("file", { late: true })
    const t0 = performance.now()
    const result = await h.queues.submit(envelope, { late: true }, { timeoutMs: 300 })
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(!result.ok && result.error).toBeInstanceOf(TierQueues.ResultTimeout)
    expect(!result.ok && result.code).toBe("RESULT_TIMEOUT")
    const worker = await h.startWorker(1)
    await eventually(() => (worker.stats.refused["SUBMISSION_EXPIRED"] ?? 0) === 1)
    expect(h.calls.log).toEqual([])
    // Never dispatched: the grant was not used, and the ledger holds the decision only.
    expect((await history(h.egl, envelope.id)).map((r) => r.kind)).toEqual(["decision"])
  })
})

describe("queue unavailable", () => {
  it("Redis behind a closed proxy: POOL_UNAVAILABLE at once, nothing runs, the grant stays usable", async () => {
    const h = await setup()
    await h.startWorker(2)
    const proxy = await startProxy()
    cleanups.push(() => proxy.close())
    const queues = h.producer({ url: proxy.url, breaker: { failureThreshold: 100 } })
    expect(await queues.ready(5000)).toBe(true)
    const warm = await h.admit("network", { warm: true })
    expect(await queues.submit(warm, { warm: true })).toMatchObject({ ok: true })

    await proxy.close()
    const envelope = await h.admit("network", { down: true })
    const times: Array<number> = []
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now()
      const result = await queues.submit(envelope, { down: true })
      times.push(performance.now() - t0)
      expect(!result.ok && result.error).toBeInstanceOf(IsolationRouter.PoolUnavailable)
      expect(!result.ok && result.code).toBe("POOL_UNAVAILABLE")
      expect(!result.ok && result.error).toMatchObject({ tier: 2, pool: "pool-t2" })
    }
    expect(Math.max(...times)).toBeLessThan(200)
    expect(h.calls.log).toEqual(['pool-t2 network {"warm":true}'])
    expect((await history(h.egl, envelope.id)).map((r) => r.kind)).toEqual(["decision"])
    console.log(`queue down (proxy closed): POOL_UNAVAILABLE in max ${Math.max(...times).toFixed(2)} ms`)

    // Redis back: the same envelope runs, since its grant was never used.
    await proxy.open()
    await eventually(async () => (await queues.ready(100)) === true, 8000)
    expect(await queues.submit(envelope, { down: true })).toMatchObject({ ok: true })
  })

  it("a producer pointed at a closed port: POOL_UNAVAILABLE quickly", async () => {
    const h = await setup()
    const port = await closedPort()
    const queues = h.producer({ url: `redis://127.0.0.1:${port}` })
    const envelope = await h.admit("privileged", { x: 1 })
    const t0 = performance.now()
    const result = await queues.submit(envelope, { x: 1 })
    const ms = performance.now() - t0
    expect(!result.ok && result.error).toBeInstanceOf(IsolationRouter.PoolUnavailable)
    expect(!result.ok && result.error).toMatchObject({ tier: 3, pool: "pool-t3" })
    expect(ms).toBeLessThan(DEFAULT_ENQUEUE_BOUND)
    console.log(`queue on a closed port: POOL_UNAVAILABLE in ${ms.toFixed(2)} ms`)
  })

  it("the breaker opens after consecutive failures, refuses at once, and closes after the cooldown", async () => {
    const h = await setup()
    await h.startWorker(2)
    const proxy = await startProxy()
    cleanups.push(() => proxy.close())
    const queues = h.producer({
      url: proxy.url,
      breaker: { failureThreshold: 3, cooldownMs: 1000 },
      governance: h.egl
    })
    const routerPool2 = async () =>
      (await h.egl.runtime.runPromise(IsolationRouter.IsolationRouter.use((r) => r.status)))[2]!.available
    expect(await queues.ready(5000)).toBe(true)
    await proxy.close()
    const envelope = await h.admit("network", { b: 1 })
    for (let i = 0; i < 3; i++) {
      const r = await queues.submit(envelope, { b: 1 })
      expect(!r.ok && r.error.message).not.toMatch(/breaker/)
    }
    const openedAt = Date.now()
    expect(queues.status()[2]).toMatchObject({ pool: "pool-t2", breaker: "open", consecutiveFailures: 3 })
    // Other pools are not affected.
    expect(queues.status()[3]).toMatchObject({ breaker: "closed", consecutiveFailures: 0 })
    const t0 = performance.now()
    const open = await queues.submit(envelope, { b: 1 })
    expect(performance.now() - t0).toBeLessThan(50)
    expect(!open.ok && open.error.message).toMatch(/circuit breaker open/)
    // Mirrored into the governance instance: admission sees the pool as unavailable.
    expect(await routerPool2()).toBe(false)
    expect(Date.now() - openedAt).toBeLessThan(1000)

    await proxy.open()
    await eventually(async () => (await queues.ready(100)) === true, 8000)
    await eventually(() => queues.status()[2]!.breaker === "half-open", 2000)
    // The end of the cooldown makes the pool admissible again, for the trial.
    await eventually(routerPool2, 1000)
    expect(h.calls.log).toEqual([])
    expect(await queues.submit(envelope, { b: 1 })).toMatchObject({ ok: true })
    expect(queues.status()[2]).toMatchObject({ breaker: "closed", consecutiveFailures: 0 })
  })

  it("no cross-tier fallback unless incident mode: a remote pool that is down is seen at admission", async () => {
    const downTier1 = async (h: Awaited<ReturnType<typeof setup>>) => {
      // No tier-1 worker: two unanswered jobs open the tier-1 breaker, which the router of the governance now sees.
      for (const i of [1, 2]) {
        const e = await h.admit("file", { i })
        expect(await h.queues.submit(e, { i }, { timeoutMs: 150 })).toMatchObject({ code: "RESULT_TIMEOUT" })
      }
      expect(h.queues.status()[1]!.breaker).toBe("open")
      const pools = await h.egl.runtime.runPromise(IsolationRouter.IsolationRouter.use((r) => r.status))
      expect(pools[1]).toMatchObject({ pool: "pool-t1", available: false })
    }
    const breaker = { failureThreshold: 2, cooldownMs: 60_000 }

    // Normal mode: the admission itself is denied, and the denial is recorded.
    const normal = await setup({ mirror: true, queues: { breaker } })
    await normal.startWorker(2)
    await downTier1(normal)
    const denied = await normal.egl.admit(request("file", { i: 3 }))
    expect(!denied.ok && denied.reasonCodes).toEqual(["POOL_UNAVAILABLE"])
    expect(denied.envelope?.decision.outcome).toBe("denied")
    expect(normal.calls.log).toEqual([])

    // Incident mode: routed to the next higher tier's pool, recorded, and run there (never on a lower tier).
    const incident = await setup({ mirror: true, queues: { breaker }, policy: { ...policy, crossTierFallback: true } })
    const t2 = await incident.startWorker(2)
    await downTier1(incident)
    const admitted = await incident.egl.admit(request("file", { i: 3 }))
    if (!admitted.ok) throw new Error("expected an admission in incident mode")
    expect(admitted.reasonCodes).toContain("CROSS_TIER_FALLBACK")
    expect(admitted.envelope.granted).toMatchObject({ tier: 1, pool: "pool-t2" })
    const result = await incident.queues.submit(admitted.envelope, { i: 3 })
    expect(result).toMatchObject({ ok: true, worker: t2.worker, output: { tier: 1 } })
    expect((await history(incident.egl, admitted.envelope.id)).map((r) => r.type ?? r.phase ?? r.kind)).toEqual([
      "decision",
      "CROSS_TIER_FALLBACK",
      "dispatched",
      "completed"
    ])
  })

  it("refuses unusable options at once", () => {
    expect(() => TierQueues.make({ enqueueTimeoutMs: -1 })).toThrow(TierQueues.ConfigInvalid)
    expect(() => TierQueues.make({ breaker: { cooldownMs: Number.NaN } })).toThrow(/cooldownMs/)
  })

  it("a worker refuses unusable options at once", async () => {
    const h = await setup()
    await expect(TierWorker.start({ governance: h.egl, tier: 4 as 3, handlers: {} })).rejects.toThrow(/tier/)
    await expect(
      TierWorker.start({ governance: h.egl, tier: 1, handlers: { "jobs.file": "nope" as never }, url: REDIS_URL })
    ).rejects.toThrow(/not a function/)
    await expect(TierWorker.start({ governance: h.egl, tier: 1, handlers: {}, concurrency: 0 })).rejects.toThrow(
      /concurrency/
    )
  })
})

/** A closed port refuses the connection at once; allow for a slow machine. */
const DEFAULT_ENQUEUE_BOUND = TierQueues.DEFAULT_ENQUEUE_TIMEOUT_MS + 200
