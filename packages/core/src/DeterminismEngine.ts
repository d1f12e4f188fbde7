/**
 * The deterministic cache (SPEC §7): replay the output of a side-effect-free execution instead of running it again.
 *
 * A result may be replayed only when the replay is indistinguishable from a fresh run, so everything that could change
 * the output is in the key: tool, action, input digest, runtime fingerprint, policy snapshot id and the digest of the
 * capability envelope ({@link cacheKey}). {@link eligibility} keeps out what is not deterministic: tier 3, classes that
 * did not opt in, side-effecting capabilities, and any runtime that is not the exact one attested.
 *
 * A cache is an attack surface and a source of silent corruption, so the stored output text is re-digested on every
 * read: a mismatch is a poisoning, the entry is deleted and never served ({@link Poisoned}). Caching is best effort in
 * every other respect: a store that fails or is slow is a miss, and a write that fails is counted and forgotten; the
 * cache never fails an admission.
 *
 * Backends implement {@link CacheStore}: in-process {@link lruStore} by default, a shared Redis store for several
 * instances behind the same interface.
 * @module
 */
import { Cause, Clock, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { LRUCache } from "lru-cache"
import * as Canonical from "./Canonical.ts"
import type { RuntimeVerdict } from "./Envelope.ts"
import type { ExecutionClass, Tier } from "./ExecutionClass.ts"
import { sha256Hex } from "./internal/hash.ts"

/** The cache backend failed. The engine turns this into a miss; it never reaches an admission. */
export class CacheUnavailable extends Schema.TaggedError<CacheUnavailable>()("CacheUnavailable", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** A cached execution result. */
export interface CacheEntry {
  /** Canonical JSON text of the output. */
  readonly output: string
  /** SHA-256 of `output`, checked on every read. */
  readonly outputDigest: string
  readonly metadata: {
    readonly durationMs?: number
    readonly tier: Tier
    /** ISO-8601 time of the write. */
    readonly storedAt: string
  }
  /** What produced the output (also part of the key). */
  readonly provenance: {
    readonly runtimeFingerprint: string
    readonly policySnapshotId: string
    readonly toolVersion: string
  }
  /** Epoch milliseconds after which the entry is a miss. */
  readonly expiresAt: number
}

/** A cache backend. Implementations need not check digests or expiry; the engine does. */
export interface CacheStore {
  /** Human-readable location, e.g. `lru:max=10000`. */
  readonly description: string
  /** The entry under `key`, or undefined. */
  get(key: string): Effect.Effect<CacheEntry | undefined, CacheUnavailable>
  /** Writes an entry, to be evicted after `ttlMs` milliseconds. */
  set(key: string, entry: CacheEntry, ttlMs: number): Effect.Effect<void, CacheUnavailable>
  /** Deletes an entry (no-op when absent). */
  delete(key: string): Effect.Effect<void, CacheUnavailable>
}

/** Options of {@link lruStore}. */
export interface LruStoreOptions {
  /** Maximum number of entries. */
  readonly max: number
  /** Default time to live in milliseconds (per-entry TTLs given to `set` take precedence). */
  readonly ttlMs: number
}

/**
 * An in-process {@link CacheStore} on `lru-cache`. Its TTL only bounds memory (it runs on the process clock); the
 * engine checks `expiresAt` itself.
 */
export const lruStore = (options: LruStoreOptions): CacheStore => {
  const lru = new LRUCache<string, CacheEntry>({ max: options.max, ttl: options.ttlMs })
  return {
    description: `lru:max=${options.max}`,
    get: (key) => Effect.sync(() => lru.get(key)),
    set: (key, entry, ttlMs) =>
      Effect.sync(() => {
        lru.set(key, entry, { ttl: ttlMs })
      }),
    delete: (key) =>
      Effect.sync(() => {
        lru.delete(key)
      })
  }
}

/** The facts {@link eligibility} decides on. */
export interface EligibilityInput {
  readonly executionClass: ExecutionClass
  /** Resolved by the classifier: the class default or the action's opt-in. */
  readonly cacheable: boolean
  readonly tier: Tier
  /** Whether any granted capability has side effects. */
  readonly sideEffects: boolean
  readonly runtimeVerdict: RuntimeVerdict
}

/** Whether an execution may use the cache, and why not. */
export interface Eligibility {
  readonly eligible: boolean
  readonly reason?: string
}

const ELIGIBLE: Eligibility = Object.freeze({ eligible: true })
const TIER_3: Eligibility = Object.freeze({ eligible: false, reason: "tier 3 executions are never cached" })
const NOT_CACHEABLE: Eligibility = Object.freeze({ eligible: false, reason: "the action is not cacheable" })
const SIDE_EFFECTS: Eligibility = Object.freeze({ eligible: false, reason: "a granted capability has side effects" })
const NOT_EXACT: Eligibility = Object.freeze({
  eligible: false,
  reason: "the runtime is not the exact attested runtime, so a replay would not be identical"
})

/**
 * Whether an execution may be served from, or stored in, the cache: never at tier 3, only when cacheable, only without
 * side effects, and only on an `exact` runtime verdict. Returns shared frozen objects (no allocation).
 */
export const eligibility = (input: EligibilityInput): Eligibility => {
  if (input.tier === 3) return TIER_3
  if (!input.cacheable) return NOT_CACHEABLE
  if (input.sideEffects) return SIDE_EFFECTS
  if (input.runtimeVerdict !== "exact") return NOT_EXACT
  return ELIGIBLE
}

/** The components of a cache key. */
export interface CacheKeyInput {
  readonly tool: string
  readonly action: string
  /** SHA-256 of the canonical input. */
  readonly inputDigest: string
  readonly runtimeFingerprint: string
  readonly policySnapshotId: string
  /** See {@link capabilityEnvelopeDigest}. */
  readonly capabilityEnvelopeDigest: string
}

/**
 * The cache key: SHA-256 over a length-prefixed encoding of every component, so no two different tuples encode alike
 * whatever characters they contain.
 */
export const cacheKey = (input: CacheKeyInput): string =>
  sha256Hex(
    "egl-cache-key/v1" +
      `\n${input.tool.length}:${input.tool}` +
      `\n${input.action.length}:${input.action}` +
      `\n${input.inputDigest.length}:${input.inputDigest}` +
      `\n${input.runtimeFingerprint.length}:${input.runtimeFingerprint}` +
      `\n${input.policySnapshotId.length}:${input.policySnapshotId}` +
      `\n${input.capabilityEnvelopeDigest.length}:${input.capabilityEnvelopeDigest}`
  )

/** What an execution is allowed to do: the part of the grant that can change its output. */
export interface CapabilityEnvelope {
  readonly tier: Tier
  readonly capabilities: ReadonlyArray<string>
  readonly resources: Readonly<Record<string, unknown>>
}

/**
 * SHA-256 of the canonical form of a capability envelope, with capabilities sorted and de-duplicated (their order
 * carries no meaning). Returns the error as a value when the resources have no canonical form.
 */
export const capabilityEnvelopeDigest = (envelope: CapabilityEnvelope): string | Canonical.CanonicalizationError => {
  const capabilities = [...new Set(envelope.capabilities)].sort()
  const text = Canonical.toCanonicalJsonOrError({ tier: envelope.tier, capabilities, resources: envelope.resources })
  return typeof text === "string" ? sha256Hex(text) : text
}

/** A verified cache hit. */
export interface Hit {
  readonly _tag: "Hit"
  /** A fresh copy of the output, parsed from the verified text: the caller may mutate it. */
  readonly output: unknown
  readonly entry: CacheEntry
}

/** No usable entry. */
export interface Miss {
  readonly _tag: "Miss"
  readonly reason: "absent" | "expired" | "store-error"
}

/** The stored output does not match its digest: a poisoning incident. The entry has been deleted. */
export interface Poisoned {
  readonly _tag: "Poisoned"
  readonly key: string
  /** The digest the entry claims. */
  readonly expectedDigest: string
  /** The digest of the text actually stored (empty when the output is not text at all). */
  readonly actualDigest: string
}

/** Result of {@link DeterminismEngine.lookup}. */
export type Lookup = Hit | Miss | Poisoned

/** What {@link DeterminismEngine.store} records besides the output. */
export interface StoreMeta {
  readonly tier: Tier
  readonly durationMs?: number | undefined
  readonly runtimeFingerprint: string
  readonly policySnapshotId: string
  readonly toolVersion: string
  /** Time to live in milliseconds (default: the engine's). */
  readonly ttlMs?: number | undefined
}

/** Result of {@link DeterminismEngine.store}. */
export interface StoreOutcome {
  /** False when the backend failed (the failure is counted in `storeErrors`). */
  readonly stored: boolean
  readonly entry: CacheEntry
}

/** Engine counters since the layer was built. */
export interface CacheStats {
  readonly hits: number
  /** Lookups that found nothing usable: absent, expired, or a failed / timed-out store. */
  readonly misses: number
  readonly poisonings: number
  /** Failed or timed-out store operations, reads and writes. */
  readonly storeErrors: number
}

/** Options of the engine. */
export interface EngineOptions {
  /** Default time to live of an entry, in milliseconds (default 1 hour). */
  readonly ttlMs?: number | undefined
  /**
   * A read slower than this is a miss (default {@link DEFAULT_READ_TIMEOUT_MS}); `0` disables the timer, for stores
   * that answer synchronously.
   */
  readonly readTimeoutMs?: number | undefined
}

/** Default read timeout for remote stores, in milliseconds. */
export const DEFAULT_READ_TIMEOUT_MS = 50

/** Default entry time to live, in milliseconds. */
export const DEFAULT_TTL_MS = 60 * 60 * 1000

/** The deterministic cache service. */
export class DeterminismEngine extends Context.Service<
  DeterminismEngine,
  {
    /**
     * Looks up a key. Never fails: a store error or timeout is a {@link Miss}, a digest mismatch a {@link Poisoned}
     * (deleted, never served).
     */
    lookup(key: string): Effect.Effect<Lookup>
    /**
     * Canonicalizes and stores an output. Fails only when the output has no canonical form (then it must not be
     * cached); backend failures are counted and reported as `stored: false`.
     */
    store(key: string, output: unknown, meta: StoreMeta): Effect.Effect<StoreOutcome, Canonical.CanonicalizationError>
    /** Counters since the layer was built. */
    readonly stats: Effect.Effect<CacheStats>
  }
>()("@egl/core/DeterminismEngine") {
  /** An engine over any {@link CacheStore} (e.g. Redis). */
  static readonly layer = (store: CacheStore, options?: EngineOptions): Layer.Layer<DeterminismEngine> =>
    Layer.sync(DeterminismEngine, () => make(store, options))

  /** An engine over an in-process {@link lruStore}, without read timer (the store answers synchronously). */
  static readonly layerLru = (options: LruStoreOptions): Layer.Layer<DeterminismEngine> =>
    Layer.sync(DeterminismEngine, () => make(lruStore(options), { ttlMs: options.ttlMs, readTimeoutMs: 0 }))
}

const MISS_ABSENT: Miss = Object.freeze({ _tag: "Miss", reason: "absent" })
const MISS_EXPIRED: Miss = Object.freeze({ _tag: "Miss", reason: "expired" })
const MISS_STORE_ERROR: Miss = Object.freeze({ _tag: "Miss", reason: "store-error" })

const make = (store: CacheStore, options?: EngineOptions): DeterminismEngine["Service"] => {
  const ttlMs = options?.ttlMs ?? DEFAULT_TTL_MS
  const readTimeoutMs = options?.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS
  let hits = 0
  let misses = 0
  let poisonings = 0
  let storeErrors = 0

  // `null` marks a failed or timed-out read.
  const recoverRead = <A>(self: Effect.Effect<A, CacheUnavailable>) => recoverStore(self, () => null)
  const read: (key: string) => Effect.Effect<CacheEntry | undefined | null> =
    readTimeoutMs > 0
      ? (key) =>
          store.get(key).pipe(
            Effect.timeoutOption(Duration.millis(readTimeoutMs)),
            Effect.map((o) => (Option.isSome(o) ? o.value : null)),
            recoverRead
          )
      : (key) => recoverRead(store.get(key))

  // Deleting is best effort: a failure only means the next read meets the same entry (and rejects it again).
  const forget = (key: string) =>
    recoverStore(store.delete(key), () => {
      storeErrors++
    })

  const lookup = (key: string): Effect.Effect<Lookup> =>
    Effect.flatMap(read(key), (entry) =>
      Clock.clockWith((clock): Effect.Effect<Lookup> => {
        if (entry === null) {
          storeErrors++
          misses++
          return Effect.succeed(MISS_STORE_ERROR)
        }
        if (entry === undefined) {
          misses++
          return Effect.succeed(MISS_ABSENT)
        }
        const text: unknown = entry.output
        const actual = typeof text === "string" ? sha256Hex(text) : ""
        if (actual === "" || actual !== entry.outputDigest) {
          poisonings++
          const poisoned: Poisoned = {
            _tag: "Poisoned",
            key,
            expectedDigest: String(entry.outputDigest),
            actualDigest: actual
          }
          return Effect.as(forget(key), poisoned)
        }
        if (!(clock.currentTimeMillisUnsafe() < entry.expiresAt)) {
          misses++
          return Effect.as(forget(key), MISS_EXPIRED)
        }
        const parsed = parseOutput(text as string)
        if (parsed === UNPARSABLE) {
          // Digest and text agree but the text is not JSON: written by something other than this engine.
          poisonings++
          return Effect.as(forget(key), {
            _tag: "Poisoned",
            key,
            expectedDigest: entry.outputDigest,
            actualDigest: actual
          } as Poisoned)
        }
        hits++
        return Effect.succeed({ _tag: "Hit", output: parsed, entry })
      })
    )

  const store_ = (
    key: string,
    output: unknown,
    meta: StoreMeta
  ): Effect.Effect<StoreOutcome, Canonical.CanonicalizationError> =>
    Clock.clockWith((clock) => {
      const text = Canonical.toCanonicalJsonOrError(output)
      if (typeof text !== "string") return Effect.fail(text)
      const now = clock.currentTimeMillisUnsafe()
      const ttl = meta.ttlMs ?? ttlMs
      const entry: CacheEntry = deepFreeze({
        output: text,
        outputDigest: sha256Hex(text),
        metadata:
          meta.durationMs === undefined
            ? { tier: meta.tier, storedAt: new Date(now).toISOString() }
            : { durationMs: meta.durationMs, tier: meta.tier, storedAt: new Date(now).toISOString() },
        provenance: {
          runtimeFingerprint: meta.runtimeFingerprint,
          policySnapshotId: meta.policySnapshotId,
          toolVersion: meta.toolVersion
        },
        expiresAt: now + ttl
      })
      return recoverStore(Effect.as(store.set(key, entry, ttl), { stored: true, entry }), (): StoreOutcome => {
        storeErrors++
        return { stored: false, entry }
      })
    })

  return DeterminismEngine.of({
    lookup,
    store: store_,
    stats: Effect.sync(() => ({ hits, misses, poisonings, storeErrors }))
  })
}

const UNPARSABLE: unique symbol = Symbol("UNPARSABLE")

const parseOutput = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return UNPARSABLE
  }
}

/**
 * Turns any store failure, typed or defect (a client that throws), into `onError()`; only interruption propagates.
 */
const recoverStore = <A, B>(self: Effect.Effect<A, CacheUnavailable>, onError: () => B): Effect.Effect<A | B> =>
  Effect.catchCause(self, (cause) =>
    Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause as Cause.Cause<never>) : Effect.sync(onError)
  )

const deepFreeze = (entry: CacheEntry): CacheEntry => {
  Object.freeze(entry.metadata)
  Object.freeze(entry.provenance)
  return Object.freeze(entry)
}
