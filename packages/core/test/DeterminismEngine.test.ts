import { createHash } from "node:crypto"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import { CanonicalizationError } from "../src/Canonical.ts"
import {
  CacheUnavailable,
  cacheKey,
  capabilityEnvelopeDigest,
  DeterminismEngine,
  eligibility,
  lruStore,
  type CacheEntry,
  type CacheKeyInput,
  type CacheStore,
  type EligibilityInput,
  type StoreMeta
} from "../src/DeterminismEngine.ts"

const run = <A, E>(effect: Effect.Effect<A, E, DeterminismEngine>, layer: Layer.Layer<DeterminismEngine>): Promise<A> =>
  Effect.runPromise(effect.pipe(Effect.provide(layer), Effect.provide(TestClock.layer())))

const meta: StoreMeta = {
  tier: 0,
  durationMs: 12,
  runtimeFingerprint: "a".repeat(64),
  policySnapshotId: "b".repeat(64),
  toolVersion: "1.2.3"
}

const keyInput: CacheKeyInput = {
  tool: "formatter",
  action: "format",
  inputDigest: "1".repeat(64),
  runtimeFingerprint: "2".repeat(64),
  policySnapshotId: "3".repeat(64),
  capabilityEnvelopeDigest: "4".repeat(64)
}

describe("eligibility", () => {
  const ok: EligibilityInput = {
    executionClass: "transform",
    cacheable: true,
    tier: 0,
    sideEffects: false,
    runtimeVerdict: "exact"
  }
  it("admits a cacheable, side-effect-free execution on the exact runtime", () => {
    expect(eligibility(ok)).toEqual({ eligible: true })
  })
  it("refuses tier 3, non-cacheable, side effects and any non-exact runtime", () => {
    expect(eligibility({ ...ok, executionClass: "privileged", tier: 3 })).toMatchObject({
      eligible: false,
      reason: expect.stringContaining("tier 3")
    })
    expect(eligibility({ ...ok, tier: 3 }).eligible).toBe(false)
    expect(eligibility({ ...ok, cacheable: false })).toMatchObject({
      eligible: false,
      reason: expect.stringContaining("not cacheable")
    })
    expect(eligibility({ ...ok, sideEffects: true })).toMatchObject({
      eligible: false,
      reason: expect.stringContaining("side effects")
    })
    for (const runtimeVerdict of ["drift-allowed", "blocked", "unattested", "not-evaluated"] as const) {
      expect(eligibility({ ...ok, runtimeVerdict }).eligible).toBe(false)
    }
    // An opted-in action of another class is eligible.
    expect(eligibility({ ...ok, executionClass: "ai", tier: 2 }).eligible).toBe(true)
  })
})

describe("cacheKey", () => {
  it("changes when any component changes", () => {
    const k = cacheKey(keyInput)
    expect(k).toMatch(/^[0-9a-f]{64}$/)
    expect(cacheKey({ ...keyInput })).toBe(k)
    const keys = new Set([k])
    for (const field of Object.keys(keyInput) as Array<keyof CacheKeyInput>) {
      keys.add(cacheKey({ ...keyInput, [field]: keyInput[field] + "x" }))
    }
    expect(keys.size).toBe(1 + Object.keys(keyInput).length)
  })
  it("is unambiguous across field boundaries", () => {
    expect(cacheKey({ ...keyInput, tool: "ab", action: "c" })).not.toBe(
      cacheKey({ ...keyInput, tool: "a", action: "bc" })
    )
    expect(cacheKey({ ...keyInput, tool: "a\n1:b", action: "c" })).not.toBe(
      cacheKey({ ...keyInput, tool: "a", action: "b\n1:c" })
    )
  })
})

describe("capabilityEnvelopeDigest", () => {
  const env = { tier: 1 as const, capabilities: ["fs.read", "compute"], resources: { memoryGiB: 2 } }
  it("ignores capability order and duplicates, and covers tier, capabilities and resources", () => {
    const d = capabilityEnvelopeDigest(env)
    expect(d).toMatch(/^[0-9a-f]{64}$/)
    expect(capabilityEnvelopeDigest({ ...env, capabilities: ["compute", "fs.read", "compute"] })).toBe(d)
    expect(capabilityEnvelopeDigest({ ...env, tier: 2 })).not.toBe(d)
    expect(capabilityEnvelopeDigest({ ...env, capabilities: ["compute"] })).not.toBe(d)
    expect(capabilityEnvelopeDigest({ ...env, resources: { memoryGiB: 4 } })).not.toBe(d)
  })
  it("returns the error when resources have no canonical form", () => {
    expect(capabilityEnvelopeDigest({ ...env, resources: { memoryGiB: Number.NaN } })).toBeInstanceOf(
      CanonicalizationError
    )
  })
})

describe("DeterminismEngine", () => {
  it("stores canonical output and serves a verified fresh copy", () =>
    run(
      Effect.gen(function* () {
        const engine = yield* DeterminismEngine
        const key = cacheKey(keyInput)
        expect(yield* engine.lookup(key)).toEqual({ _tag: "Miss", reason: "absent" })
        const { stored, entry } = yield* engine.store(key, { b: [1, 2], a: "x" }, meta)
        expect(stored).toBe(true)
        expect(entry.output).toBe('{"a":"x","b":[1,2]}')
        expect(entry.metadata).toEqual({ durationMs: 12, tier: 0, storedAt: new Date(0).toISOString() })
        expect(entry.provenance).toEqual({
          runtimeFingerprint: meta.runtimeFingerprint,
          policySnapshotId: meta.policySnapshotId,
          toolVersion: "1.2.3"
        })
        expect(entry.expiresAt).toBe(60_000)

        const hit = yield* engine.lookup(key)
        if (hit._tag !== "Hit") throw new Error(`expected a hit, got ${hit._tag}`)
        expect(hit.output).toEqual({ a: "x", b: [1, 2] })
        ;(hit.output as { a: string }).a = "mutated"
        const again = yield* engine.lookup(key)
        expect(again._tag === "Hit" && again.output).toEqual({ a: "x", b: [1, 2] })
        expect(yield* engine.stats).toEqual({ hits: 2, misses: 1, poisonings: 0, storeErrors: 0 })
      }),
      DeterminismEngine.layerLru({ max: 100, ttlMs: 60_000 })
    ))

  it("does not cache output without a canonical form", () =>
    run(
      Effect.gen(function* () {
        const engine = yield* DeterminismEngine
        const error = yield* Effect.flip(engine.store("k", { n: Number.POSITIVE_INFINITY }, meta))
        expect(error).toBeInstanceOf(CanonicalizationError)
        expect((yield* engine.lookup("k"))._tag).toBe("Miss")
      }),
      DeterminismEngine.layerLru({ max: 100, ttlMs: 60_000 })
    ))

  it("detects a poisoned entry, deletes it and never serves it", async () => {
    const store = lruStore({ max: 100, ttlMs: 60_000 })
    await run(
      Effect.gen(function* () {
        const engine = yield* DeterminismEngine
        const { entry } = yield* engine.store("k1", { result: 1 }, meta)
        yield* engine.store("k2", { result: 2 }, meta)
        // Tamper with the output behind the engine's back.
        yield* store.set("k1", { ...entry, output: '{"result":666}' }, 60_000)
        const poisoned = yield* engine.lookup("k1")
        expect(poisoned).toMatchObject({ _tag: "Poisoned", key: "k1", expectedDigest: entry.outputDigest })
        expect(yield* store.get("k1")).toBeUndefined()
        expect(yield* engine.lookup("k1")).toEqual({ _tag: "Miss", reason: "absent" })
        // Tamper with the digest only, and with the shape.
        const other = (yield* store.get("k2"))!
        yield* store.set("k2", { ...other, outputDigest: "0".repeat(64) }, 60_000)
        expect((yield* engine.lookup("k2"))._tag).toBe("Poisoned")
        yield* store.set("k3", { ...other, output: 42 } as unknown as CacheEntry, 60_000)
        expect((yield* engine.lookup("k3"))._tag).toBe("Poisoned")
        // Consistent text and digest that is not JSON: not written by the engine.
        yield* store.set(
          "k4",
          { ...other, output: "{nope", outputDigest: createHash("sha256").update("{nope").digest("hex") },
          60_000
        )
        expect((yield* engine.lookup("k4"))._tag).toBe("Poisoned")
        expect(yield* engine.stats).toMatchObject({ hits: 0, poisonings: 4 })
      }),
      DeterminismEngine.layer(store, { readTimeoutMs: 0 })
    )
  })

  it("treats a failing store as a miss and a failed write as best effort", () => {
    let calls = 0
    const failing: CacheStore = {
      description: "failing",
      get: () => Effect.fail(new CacheUnavailable({ detail: "connection refused" })),
      set: () => Effect.fail(new CacheUnavailable({ detail: "connection refused" })),
      delete: () => Effect.die(new Error("client crashed"))
    }
    const throwing: CacheStore = {
      ...failing,
      get: () =>
        Effect.sync(() => {
          calls++
          throw new Error("client threw")
        })
    }
    return Promise.all([
      run(
        Effect.gen(function* () {
          const engine = yield* DeterminismEngine
          expect(yield* engine.lookup("k")).toEqual({ _tag: "Miss", reason: "store-error" })
          const outcome = yield* engine.store("k", { ok: true }, meta)
          expect(outcome.stored).toBe(false)
          expect(outcome.entry.output).toBe('{"ok":true}')
          expect(yield* engine.stats).toEqual({ hits: 0, misses: 1, poisonings: 0, storeErrors: 2 })
        }),
        DeterminismEngine.layer(failing, { readTimeoutMs: 0 })
      ),
      run(
        Effect.gen(function* () {
          const engine = yield* DeterminismEngine
          expect(yield* engine.lookup("k")).toEqual({ _tag: "Miss", reason: "store-error" })
          expect(calls).toBe(1)
        }),
        DeterminismEngine.layer(throwing, { readTimeoutMs: 0 })
      )
    ])
  })

  it("treats a slow store as a miss", async () => {
    const slow: CacheStore = { ...lruStore({ max: 10, ttlMs: 1000 }), get: () => Effect.never }
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const engine = yield* DeterminismEngine
        const lookup = yield* engine.lookup("k")
        return [lookup, yield* engine.stats] as const
      }).pipe(Effect.provide(DeterminismEngine.layer(slow, { readTimeoutMs: 5 })))
    )
    expect(result[0]).toEqual({ _tag: "Miss", reason: "store-error" })
    expect(result[1]).toMatchObject({ misses: 1, storeErrors: 1 })
  })

  it("expires entries on the Effect clock", () =>
    run(
      Effect.gen(function* () {
        const engine = yield* DeterminismEngine
        yield* engine.store("k", "v", meta)
        yield* engine.store("short", "v", { ...meta, ttlMs: 10 })
        yield* TestClock.adjust(999)
        expect((yield* engine.lookup("k"))._tag).toBe("Hit")
        expect(yield* engine.lookup("short")).toEqual({ _tag: "Miss", reason: "expired" })
        yield* TestClock.adjust(1)
        expect(yield* engine.lookup("k")).toEqual({ _tag: "Miss", reason: "expired" })
        expect(yield* engine.lookup("k")).toEqual({ _tag: "Miss", reason: "absent" })
      }),
      DeterminismEngine.layerLru({ max: 100, ttlMs: 1000 })
    ))

  it("evicts least recently used entries beyond max", () =>
    run(
      Effect.gen(function* () {
        const engine = yield* DeterminismEngine
        yield* engine.store("a", 1, meta)
        yield* engine.store("b", 2, meta)
        yield* engine.lookup("a")
        yield* engine.store("c", 3, meta)
        expect((yield* engine.lookup("a"))._tag).toBe("Hit")
        expect((yield* engine.lookup("b"))._tag).toBe("Miss")
        expect((yield* engine.lookup("c"))._tag).toBe("Hit")
      }),
      DeterminismEngine.layerLru({ max: 2, ttlMs: 60_000 })
    ))
})
