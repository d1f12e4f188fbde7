import { createGovernance, DecisionLog, DeterminismEngine, type GovernanceInstance } from "@egl/core"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { RedisCacheStore } from "../src/index.ts"
import {
  deleteKeys,
  eventually,
  history,
  policy,
  REDIS_URL,
  registry,
  request,
  uniquePrefix
} from "./support/fixtures.ts"
import { closedPort, startProxy, type RedisProxy } from "./support/proxy.ts"

const redis = new Redis(REDIS_URL)
const prefixes: Array<string> = []
const closers: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(async () => {
  for (const p of prefixes) await deleteKeys(`${p}*`)
  redis.disconnect()
})

const newStore = (options: RedisCacheStore.Options = {}) => {
  const prefix = options.prefix ?? `${uniquePrefix("cache")}:`
  prefixes.push(prefix)
  const store = RedisCacheStore.make({ url: REDIS_URL, ...options, prefix })
  closers.push(() => store.close())
  return store
}

const governance = async (store: DeterminismEngine.CacheStore): Promise<GovernanceInstance> => {
  const egl = await createGovernance({ registry, policy, cache: { store }, ledgerOptions: { checkpointIntervalMs: 0 } })
  closers.push(() => egl.close())
  return egl
}

const stats = (egl: GovernanceInstance) =>
  egl.runtime.runPromise(DeterminismEngine.DeterminismEngine.use((d) => d.stats))

/** Admits `jobs.transform` on `input` and, on a miss, runs it in-process (which stores the output). */
const transform = async (egl: GovernanceInstance, input: unknown, runs: { count: number }) => {
  const admitted = await egl.admit(request("transform", input))
  if (!admitted.ok) throw new Error(`expected an admission, got ${admitted.reasonCodes.join(",")}`)
  const executed = await egl.execute(admitted, async () => {
    runs.count++
    return { upper: String((input as { text: string }).text).toUpperCase() }
  })
  if (!executed.ok) throw new Error(`execution failed: ${executed.error._tag}`)
  return { admitted, executed }
}

const ready = (store: RedisCacheStore.RedisCacheStore) => eventually(() => store.client.status === "ready", 8000)

describe("RedisCacheStore", () => {
  it("misses, then serves a verified hit, shared by two governance instances", async () => {
    const store = newStore()
    await ready(store)
    const api1 = await governance(store)
    const runs = { count: 0 }

    const first = await transform(api1, { text: "hello" }, runs)
    expect(first.admitted.envelope.cache).toMatchObject({ eligible: true, hit: false })
    expect(first.executed).toMatchObject({ ok: true, cached: false })
    const key = first.admitted.envelope.cache.key!
    const stored = JSON.parse((await redis.get(store.prefix + key))!) as DeterminismEngine.CacheEntry
    expect(stored.outputDigest).toMatch(/^[0-9a-f]{64}$/)
    const pttl = await redis.pttl(store.prefix + key)
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(DeterminismEngine.DEFAULT_TTL_MS)

    const t0 = performance.now()
    const second = await transform(api1, { text: "hello" }, runs)
    const hitMs = performance.now() - t0
    expect(second.admitted.reasonCodes).toContain("CACHE_HIT")
    expect(second.admitted.envelope.granted?.pool).toBe("cache")
    expect(second.executed).toEqual({ ok: true, output: { upper: "HELLO" }, cached: true })
    expect(runs.count).toBe(1)

    // Another API instance with its own client and the same prefix: the hit is shared.
    const store2 = newStore({ prefix: store.prefix })
    await ready(store2)
    const api2 = await governance(store2)
    const third = await transform(api2, { text: "hello" }, runs)
    expect(third.admitted.reasonCodes).toContain("CACHE_HIT")
    expect(runs.count).toBe(1)
    expect(await stats(api2)).toMatchObject({ hits: 1, misses: 0, storeErrors: 0 })
    expect(await stats(api1)).toMatchObject({ hits: 1, misses: 1, storeErrors: 0 })
    console.log(`redis cache: admission + verified hit ${hitMs.toFixed(2)} ms`)
  })

  it("an entry altered in Redis is a poisoning incident: never served, deleted, recorded", async () => {
    const store = newStore()
    await ready(store)
    const egl = await governance(store)
    const runs = { count: 0 }
    const first = await transform(egl, { text: "tamper" }, runs)
    const key = store.prefix + first.admitted.envelope.cache.key!
    const entry = JSON.parse((await redis.get(key))!) as DeterminismEngine.CacheEntry
    await redis.set(key, JSON.stringify({ ...entry, output: JSON.stringify({ upper: "PWNED" }) }), "PX", 60_000)

    const poisoned = await egl.admit(request("transform", { text: "tamper" }))
    if (!poisoned.ok) throw new Error("expected an admission")
    expect(poisoned.cached).toBeUndefined()
    expect(poisoned.reasonCodes).toContain("CACHE_POISONED")
    expect(await redis.exists(key)).toBe(0)
    expect((await history(egl, poisoned.envelope.id)).map((r) => r.type ?? r.kind)).toEqual([
      "decision",
      "CACHE_POISONED"
    ])

    // Text that is not an entry at all is a poisoning too, not a silent store error.
    await redis.set(key, "not json {", "PX", 60_000)
    const garbage = await egl.admit(request("transform", { text: "tamper" }))
    expect(garbage.ok && garbage.reasonCodes).toContain("CACHE_POISONED")
    expect(await redis.exists(key)).toBe(0)
    expect(await stats(egl)).toMatchObject({ poisonings: 2, hits: 0 })
    expect((await egl.verifyLedger()).ok).toBe(true)
  })

  describe("Redis unavailable", () => {
    let proxy: RedisProxy
    beforeAll(async () => {
      proxy = await startProxy()
    })
    afterAll(() => proxy.close())

    it("is a miss, counted and logged, admissions stay correct and fast; hits resume when Redis returns", async () => {
      const lines: Array<unknown> = []
      const logger = await Effect.runPromise(
        Effect.gen(function* () {
          return (yield* DecisionLog.DecisionLog).logger
        }).pipe(
          Effect.provide(
            DecisionLog.DecisionLog.layer({
              level: "warn",
              hooks: {
                logMethod(args) {
                  lines.push(args[0])
                }
              }
            })
          )
        )
      )
      const store = newStore({ url: proxy.url, logger, logIntervalMs: 60_000 })
      await ready(store)
      const egl = await governance(store)
      const runs = { count: 0 }
      await transform(egl, { text: "outage" }, runs)
      expect((await egl.admit(request("transform", { text: "outage" }))).reasonCodes).toContain("CACHE_HIT")

      await proxy.close()
      const times: Array<number> = []
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now()
        const admitted = await egl.admit(request("transform", { text: "outage" }))
        times.push(performance.now() - t0)
        expect(admitted.ok && admitted.envelope.cache).toMatchObject({ eligible: true, hit: false })
        expect(admitted.ok && admitted.envelope.granted?.pool).toBe("pool-t0")
      }
      // Decisions stay what the policy says: a viewer is still denied, and denied in the ledger.
      const denied = await egl.admit(request("transform", { text: "outage" }, ["viewer"]))
      expect(!denied.ok && denied.reasonCodes).toEqual(["POLICY_DENY"])
      // An execution whose output cannot be stored still completes.
      const admitted = await egl.admit(request("transform", { text: "outage-2" }))
      expect(admitted.ok && (await egl.execute(admitted, async () => "done"))).toMatchObject({ ok: true })

      const s = await stats(egl)
      expect(s.misses).toBeGreaterThanOrEqual(21)
      expect(s.storeErrors).toBeGreaterThanOrEqual(22) // 21 reads + 1 write
      expect(store.errors).toBeGreaterThanOrEqual(21)
      const sorted = [...times].sort((a, b) => a - b)
      const p50 = sorted[10]!
      const max = sorted[sorted.length - 1]!
      // Bounded by the engine's read timeout (50 ms) whatever the connection does.
      expect(max).toBeLessThan(DeterminismEngine.DEFAULT_READ_TIMEOUT_MS + 150)
      // Rate-limited: one line for the whole outage.
      expect(lines.length).toBe(1)
      expect(lines[0]).toMatchObject({ component: "egl-redis-cache", prefix: store.prefix })
      console.log(`redis cache down: admission p50 ${p50.toFixed(2)} ms, max ${max.toFixed(2)} ms`)

      await proxy.open()
      await ready(store)
      const back = await egl.admit(request("transform", { text: "outage" }))
      expect(back.reasonCodes).toContain("CACHE_HIT")
      expect(runs.count).toBe(1)
    })

    it("a store pointed at a closed port never fails an admission", async () => {
      const port = await closedPort()
      const store = newStore({ url: `redis://127.0.0.1:${port}` })
      const egl = await governance(store)
      const t0 = performance.now()
      for (let i = 0; i < 10; i++) {
        const admitted = await egl.admit(request("transform", { text: `closed-${i % 2}` }))
        expect(admitted.ok && admitted.envelope.cache).toMatchObject({ eligible: true, hit: false })
        if (admitted.ok) expect(await egl.execute(admitted, async () => i)).toMatchObject({ ok: true, cached: false })
      }
      const perAdmission = (performance.now() - t0) / 10
      expect(await stats(egl)).toMatchObject({ hits: 0, misses: 10, storeErrors: 20 })
      expect(perAdmission).toBeLessThan(100)
      console.log(`redis cache on a closed port: ${perAdmission.toFixed(2)} ms per admission + execution`)
    })

    it("a hung Redis (connected, never answering) is bounded by the command timeout", async () => {
      // A server that accepts and never replies: ioredis stays connected, so only timeouts can end its commands.
      const { createServer } = await import("node:net")
      const sockets: Array<import("node:net").Socket> = []
      const server = createServer((s) => {
        sockets.push(s)
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
      const port = (server.address() as { port: number }).port
      closers.push(
        () =>
          new Promise<void>((resolve) => {
            for (const s of sockets) s.destroy()
            server.close(() => resolve())
          })
      )
      const store = newStore({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 100 })
      const t0 = performance.now()
      const exit = await Effect.runPromiseExit(store.set("k", {} as DeterminismEngine.CacheEntry, 1000))
      const setMs = performance.now() - t0
      expect(exit._tag).toBe("Failure")
      expect(setMs).toBeLessThan(400)
      const get = await Effect.runPromiseExit(store.get("k"))
      expect(get._tag === "Failure" && String(get.cause)).toMatch(/CacheUnavailable|redis cache get/)
    })
  })

  it("refuses unusable options at once", () => {
    expect(() => RedisCacheStore.make({ prefix: "" })).toThrow(RedisCacheStore.ConfigInvalid)
    expect(() => RedisCacheStore.make({ commandTimeoutMs: 0 })).toThrow(/commandTimeoutMs/)
    expect(() => RedisCacheStore.make({ redis, url: REDIS_URL })).toThrow(/not both/)
  })

  it("uses a client passed in, and leaves it open", async () => {
    const client = new Redis(REDIS_URL, { enableOfflineQueue: false })
    await eventually(() => client.status === "ready")
    const store = newStore({ redis: client, url: undefined })
    const egl = await governance(store)
    const runs = { count: 0 }
    await transform(egl, { text: "own client" }, runs)
    expect((await egl.admit(request("transform", { text: "own client" }))).reasonCodes).toContain("CACHE_HIT")
    await store.close()
    expect(await client.ping()).toBe("PONG")
    client.disconnect()
  })
})
