import { Deferred, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import {
  defaultPoolConfigs,
  IsolationRouter,
  PoolConfigError,
  PoolUnavailable,
  poolName,
  resolvePoolConfigs,
  type PoolStatus,
  type RouterConfig
} from "../src/IsolationRouter.ts"

const run = <A, E>(effect: Effect.Effect<A, E, IsolationRouter>, config?: RouterConfig): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(IsolationRouter.layer(config)), Effect.provide(TestClock.layer())))

/** Lets forked fibers run until they block. */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 10; i++) yield* Effect.yieldNow
})

/** A task that records how many tasks of its group run at once. */
const tracker = () => {
  let active = 0
  let max = 0
  const task = Effect.gen(function* () {
    active++
    max = Math.max(max, active)
    yield* settle
    active--
  })
  return { task, max: () => max }
}

const statusOf = (all: ReadonlyArray<PoolStatus>, tier: number) => all[tier]!

const breaker = { windowSize: 4, failureRatio: 0.5, minSamples: 4, cooldownMs: 1000 }

describe("pool configuration", () => {
  it("names one pool per tier and serializes tier 3 whatever the configuration says", () => {
    expect([0, 1, 2, 3].map((t) => poolName(t as 0 | 1 | 2 | 3))).toEqual(["pool-t0", "pool-t1", "pool-t2", "pool-t3"])
    expect(defaultPoolConfigs[3].concurrency).toBe(1)
    const resolved = resolvePoolConfigs({ 3: { concurrency: 8 }, 1: { concurrency: 4, breaker: { cooldownMs: 5 } } })
    if (resolved instanceof PoolConfigError) throw resolved
    expect(resolved[3].concurrency).toBe(1)
    expect(resolved[1]).toMatchObject({ concurrency: 4, queueLimit: defaultPoolConfigs[1].queueLimit })
    expect(resolved[1].breaker).toEqual({ ...defaultPoolConfigs[1].breaker, cooldownMs: 5 })
  })

  it("rejects invalid settings when the layer is built", async () => {
    expect(resolvePoolConfigs({ 0: { concurrency: 0 } })).toBeInstanceOf(PoolConfigError)
    expect(resolvePoolConfigs({ 1: { breaker: { failureRatio: 0 } } })).toBeInstanceOf(PoolConfigError)
    expect(resolvePoolConfigs({ 2: { breaker: { windowSize: 2, minSamples: 3 } } })).toBeInstanceOf(PoolConfigError)
    const error = await Effect.runPromise(
      Effect.flip(
        Effect.provide(
          IsolationRouter.use(() => Effect.void),
          IsolationRouter.layer({ 0: { queueLimit: -1 } })
        )
      )
    )
    expect(error).toBeInstanceOf(PoolConfigError)
    expect(error.detail).toContain("pool-t0")
  })
})

describe("IsolationRouter.run", () => {
  it("never runs two tier 3 tasks at once", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        const t = tracker()
        yield* Effect.all(
          Array.from({ length: 10 }, () => router.run("pool-t3", t.task)),
          { concurrency: "unbounded" }
        )
        expect(t.max()).toBe(1)
      }),
      { 3: { concurrency: 16, queueLimit: 16 } }
    ))

  it("respects the concurrency bound of a pool", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        const t = tracker()
        const results = yield* Effect.all(
          Array.from({ length: 12 }, (_, i) => Effect.as(router.run("pool-t1", t.task), i)),
          { concurrency: "unbounded" }
        )
        expect(results).toEqual(Array.from({ length: 12 }, (_, i) => i))
        expect(t.max()).toBe(3)
        expect(statusOf(yield* router.status, 1)).toMatchObject({ inFlight: 0, queued: 0, breaker: "closed" })
      }),
      { 1: { concurrency: 3 } }
    ))

  it("rejects when the queue is full and accounts in-flight and queued tasks", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        const gate = yield* Deferred.make<void>()
        const blocked = Deferred.await(gate)
        const a = yield* Effect.forkChild(router.run("pool-t2", blocked))
        const b = yield* Effect.forkChild(router.run("pool-t2", blocked))
        const c = yield* Effect.forkChild(router.run("pool-t2", blocked))
        yield* settle
        expect(statusOf(yield* router.status, 2)).toMatchObject({ inFlight: 1, queued: 2 })
        const rejected = yield* Effect.flip(router.run("pool-t2", Effect.succeed("never")))
        expect(rejected).toBeInstanceOf(PoolUnavailable)
        expect(rejected).toMatchObject({ tier: 2, pool: "pool-t2", detail: "queue full" })
        expect((yield* Effect.flip(router.select(2, { crossTierFallback: false }))).detail).toBe("queue full")
        // Interrupting a queued task frees its place.
        yield* Fiber.interrupt(c)
        expect(statusOf(yield* router.status, 2)).toMatchObject({ inFlight: 1, queued: 1 })
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(a)
        yield* Fiber.join(b)
        expect(statusOf(yield* router.status, 2)).toMatchObject({
          inFlight: 0,
          queued: 0,
          breaker: "closed",
          samples: 2,
          failures: 0
        })
      }),
      { 2: { concurrency: 1, queueLimit: 2 } }
    ))

  it("opens the breaker after failures, half-opens after the cooldown and closes on a successful trial", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        // Task failures and defects both count; interruptions do not.
        yield* Effect.exit(router.run("pool-t0", Effect.fail("boom")))
        yield* Effect.exit(router.run("pool-t0", Effect.die(new Error("defect"))))
        yield* router.run("pool-t0", Effect.void)
        expect(statusOf(yield* router.status, 0)).toMatchObject({ breaker: "closed", samples: 3, failures: 2 })
        yield* Effect.exit(router.run("pool-t0", Effect.fail("boom")))
        expect(statusOf(yield* router.status, 0).breaker).toBe("open")

        const rejected = yield* Effect.flip(router.run("pool-t0", Effect.succeed(1)))
        expect(rejected).toMatchObject({ _tag: "PoolUnavailable", pool: "pool-t0", detail: "circuit breaker open" })
        expect((yield* Effect.flip(router.select(0, { crossTierFallback: false })))._tag).toBe("PoolUnavailable")

        yield* TestClock.adjust(999)
        expect(statusOf(yield* router.status, 0).breaker).toBe("open")
        yield* TestClock.adjust(1)
        expect(statusOf(yield* router.status, 0).breaker).toBe("half-open")
        expect(yield* router.select(0, { crossTierFallback: false })).toEqual({
          pool: "pool-t0",
          tier: 0,
          fallback: false
        })

        // Exactly one trial goes through.
        const gate = yield* Deferred.make<void>()
        const trial = yield* Effect.forkChild(router.run("pool-t0", Deferred.await(gate)))
        yield* settle
        expect((yield* Effect.flip(router.run("pool-t0", Effect.void))).detail).toContain("trial in flight")
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(trial)
        expect(statusOf(yield* router.status, 0)).toMatchObject({ breaker: "closed", samples: 0, failures: 0 })
        expect(yield* router.run("pool-t0", Effect.succeed(42))).toBe(42)
      }),
      { 0: { breaker } }
    ))

  it("re-opens the breaker when the trial fails", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        for (let i = 0; i < 4; i++) yield* Effect.exit(router.run("pool-t1", Effect.fail("boom")))
        expect(statusOf(yield* router.status, 1).breaker).toBe("open")
        yield* TestClock.adjust(1000)
        expect(yield* Effect.flip(router.run("pool-t1", Effect.fail("still broken")))).toBe("still broken")
        expect(statusOf(yield* router.status, 1).breaker).toBe("open")
        yield* TestClock.adjust(999)
        expect(statusOf(yield* router.status, 1).breaker).toBe("open")
        yield* TestClock.adjust(1)
        expect(statusOf(yield* router.status, 1).breaker).toBe("half-open")
      }),
      { 1: { breaker } }
    ))

  it("does not count interruptions, and an interrupted trial lets another through", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        const running = yield* Effect.forkChild(router.run("pool-t0", Effect.never))
        yield* settle
        yield* Fiber.interrupt(running)
        expect(statusOf(yield* router.status, 0)).toMatchObject({ inFlight: 0, samples: 0 })

        for (let i = 0; i < 4; i++) yield* Effect.exit(router.run("pool-t0", Effect.fail("boom")))
        yield* TestClock.adjust(1000)
        const trial = yield* Effect.forkChild(router.run("pool-t0", Effect.never))
        yield* settle
        expect((yield* Effect.flip(router.run("pool-t0", Effect.void))).detail).toContain("trial in flight")
        yield* Fiber.interrupt(trial)
        expect(statusOf(yield* router.status, 0).breaker).toBe("half-open")
        yield* router.run("pool-t0", Effect.void)
        expect(statusOf(yield* router.status, 0).breaker).toBe("closed")
      }),
      { 0: { breaker } }
    ))

  it("does not open below minSamples", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        for (let i = 0; i < 3; i++) yield* Effect.exit(router.run("pool-t2", Effect.fail("boom")))
        expect(statusOf(yield* router.status, 2)).toMatchObject({ breaker: "closed", failures: 3 })
      }),
      { 2: { breaker } }
    ))

  it("rejects while a pool is closed, and finishes the work it already holds", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        const gate = yield* Deferred.make<void>()
        const running = yield* Effect.forkChild(router.run("pool-t1", Effect.as(Deferred.await(gate), "done")))
        yield* settle
        yield* router.setAvailable("pool-t1", false)
        expect((yield* Effect.flip(router.run("pool-t1", Effect.void))).detail).toBe("closed for maintenance")
        yield* Deferred.succeed(gate, undefined)
        expect(yield* Fiber.join(running)).toBe("done")
        expect(statusOf(yield* router.status, 1)).toMatchObject({ available: false, inFlight: 0 })
        yield* router.setAvailable("pool-t1", true)
        yield* router.run("pool-t1", Effect.void)
      })
    ))
})

describe("IsolationRouter.select", () => {
  it("selects the tier's own pool", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        for (const tier of [0, 1, 2, 3] as const) {
          expect(yield* router.select(tier, { crossTierFallback: true })).toEqual({
            pool: poolName(tier),
            tier,
            fallback: false
          })
        }
      })
    ))

  it("falls back only with crossTierFallback, only upwards, and says so", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        yield* router.setAvailable("pool-t1", false)
        const denied = yield* Effect.flip(router.select(1, { crossTierFallback: false }))
        expect(denied).toMatchObject({ _tag: "PoolUnavailable", tier: 1, pool: "pool-t1" })
        expect(yield* router.select(1, { crossTierFallback: true })).toEqual({
          pool: "pool-t2",
          tier: 2,
          fallback: true
        })

        yield* router.setAvailable("pool-t2", false)
        expect(yield* router.select(1, { crossTierFallback: true })).toEqual({
          pool: "pool-t3",
          tier: 3,
          fallback: true
        })

        // Never lower: tier 0 is available, yet tier 1 and 2 requests cannot use it.
        yield* router.setAvailable("pool-t3", false)
        const none = yield* Effect.flip(router.select(1, { crossTierFallback: true }))
        expect(none).toMatchObject({ tier: 1, pool: "pool-t1" })
        expect(none.detail).toContain("pool-t3")
        expect(none.detail).not.toContain("pool-t0")
        expect((yield* Effect.flip(router.select(2, { crossTierFallback: true }))).tier).toBe(2)
        expect((yield* Effect.flip(router.select(3, { crossTierFallback: true }))).pool).toBe("pool-t3")
        expect(yield* router.select(0, { crossTierFallback: false })).toEqual({
          pool: "pool-t0",
          tier: 0,
          fallback: false
        })
      })
    ))

  it("is cheap", () =>
    run(
      Effect.gen(function* () {
        const router = yield* IsolationRouter
        const n = 50_000
        const start = performance.now()
        for (let i = 0; i < n; i++) yield* router.select(1, { crossTierFallback: false })
        const perCall = ((performance.now() - start) * 1000) / n
        expect(perCall).toBeLessThan(10) // µs; typically ~0.2
      })
    ))
})
