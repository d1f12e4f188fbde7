/**
 * A Redis backend for the deterministic cache (SPEC §7): several API instances share verified cache hits.
 *
 * It implements core's `DeterminismEngine.CacheStore` and nothing more: entries are stored as JSON under a key prefix
 * with a Redis TTL (`PX`), and the engine re-digests the stored output on every read, so an entry altered in Redis is a
 * poisoning incident (deleted, never served) exactly as with the in-process store. A store that cannot answer fails
 * with `CacheUnavailable`, which the engine turns into a miss and counts in `stats.storeErrors`; reads are also bounded
 * by the engine's `readTimeoutMs` (50 ms by default). So Redis being down, slow or unreachable costs cache hits, never
 * an admission and never a wrong answer.
 *
 * The client this module creates fails fast while Redis is unreachable (no offline queue, a command timeout) and keeps
 * reconnecting in the background, so hits resume by themselves when Redis returns.
 *
 * @example
 * ```ts
 * import { createGovernance } from "@egl/core"
 * import { RedisCacheStore } from "@egl/redis"
 *
 * const store = RedisCacheStore.make({ url: process.env.REDIS_URL, logger })
 * const egl = await createGovernance({ registry, policy, cache: { store } })
 * // ...
 * await egl.close()
 * await store.close()
 * ```
 * @module
 */
import { DeterminismEngine } from "@egl/core"
import { Duration, Effect } from "effect"
import type { Redis, RedisOptions } from "ioredis"
import { ConfigInvalid, nonEmptyOrUndefined, positiveOrUndefined } from "./internal/config.ts"
import { closeClient, describeError, failFastClient, redisUrl, whenReady, whenUsable } from "./internal/connection.ts"
import { throttledWarn, type WarnLogger } from "./internal/log.ts"

export { ConfigInvalid } from "./internal/config.ts"
export type { WarnLogger } from "./internal/log.ts"

/** Default key prefix. */
export const DEFAULT_PREFIX = "egl:cache:"

/** Default command timeout in milliseconds (a write that takes longer is dropped; reads are bounded by the engine). */
export const DEFAULT_COMMAND_TIMEOUT_MS = 250

/** Options of {@link make}. */
export interface Options {
  /**
   * A client you own (not closed by {@link RedisCacheStore.close}). Configure it to fail fast while Redis is down
   * (`enableOfflineQueue: false`); commands are also bounded by `commandTimeoutMs` here. Exclusive with `url`.
   */
  readonly redis?: Redis | undefined
  /** Redis URL for a client this store creates and owns (default `REDIS_URL`, else `redis://127.0.0.1:6379`). */
  readonly url?: string | undefined
  /** Extra ioredis options for the owned client (TLS, credentials, …); the fail-fast settings always win. */
  readonly redisOptions?: RedisOptions | undefined
  /** Prefix of every key (default {@link DEFAULT_PREFIX}); give each deployment or test its own. */
  readonly prefix?: string | undefined
  /** A command without an answer after this many milliseconds fails (default {@link DEFAULT_COMMAND_TIMEOUT_MS}). */
  readonly commandTimeoutMs?: number | undefined
  /** Where store failures are logged (a pino logger fits); at most one line per `logIntervalMs`. */
  readonly logger?: WarnLogger | undefined
  /** Minimum interval between two failure log lines (default 10 000 ms). */
  readonly logIntervalMs?: number | undefined
}

/** A Redis cache store. */
export interface RedisCacheStore extends DeterminismEngine.CacheStore {
  /** The client in use. */
  readonly client: Redis
  /** The key prefix. */
  readonly prefix: string
  /** Failed or timed-out commands since the store was made. */
  readonly errors: number
  /**
   * Resolves true once the client is connected, false after `timeoutMs` (default 5000) without it. Until then every
   * lookup is a miss (the client does not queue commands while disconnected), so a service may await this at start.
   */
  ready(timeoutMs?: number): Promise<boolean>
  /** Closes the client if the store created it (a client passed in stays open). Idempotent. */
  close(): Promise<void>
}

/**
 * A cache store on Redis. Throws {@link ConfigInvalid} for unusable options; never fails later: every Redis error or
 * timeout is a `CacheUnavailable`.
 */
export const make = (options: Options = {}): RedisCacheStore => {
  if (options.redis !== undefined && options.url !== undefined) {
    throw new ConfigInvalid({ detail: "give either redis (a client) or url, not both" })
  }
  nonEmptyOrUndefined("prefix", options.prefix)
  nonEmptyOrUndefined("url", options.url)
  positiveOrUndefined("commandTimeoutMs", options.commandTimeoutMs)
  positiveOrUndefined("logIntervalMs", options.logIntervalMs)
  const prefix = options.prefix ?? DEFAULT_PREFIX
  const timeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
  const owned = options.redis === undefined
  const client = options.redis ?? failFastClient(redisUrl(options.url), timeoutMs, options.redisOptions, "egl-cache")
  const warn = throttledWarn(options.logger, options.logIntervalMs ?? 10_000)
  let errors = 0
  let closed = false

  // An owned client reports its connection failures as events; without a listener ioredis would print them.
  if (owned) {
    client.on("error", (e: unknown) => {
      warn({ component: "egl-redis-cache", prefix, error: describeError(e) }, "redis cache connection failed")
    })
  }

  const command = <A>(
    op: string,
    key: string,
    run: () => Promise<A>
  ): Effect.Effect<A, DeterminismEngine.CacheUnavailable> => {
    const fail = (detail: string) => {
      errors++
      warn(
        { component: "egl-redis-cache", op, prefix, error: detail },
        "redis cache unavailable; lookups are misses and writes are dropped until it answers"
      )
      return new DeterminismEngine.CacheUnavailable({ detail: `redis cache ${op} ${key}: ${detail}` })
    }
    return Effect.tryPromise({
      try: () => whenUsable(client, timeoutMs, run),
      catch: (e) => fail(describeError(e))
    }).pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(timeoutMs),
        orElse: () => Effect.fail(fail(`no answer within ${timeoutMs} ms`))
      })
    )
  }

  return {
    description: `redis:${prefix}`,
    client,
    prefix,
    get errors() {
      return errors
    },
    get: (key) =>
      Effect.map(
        command("get", key, () => client.get(prefix + key)),
        (text) => (text === null ? undefined : decodeEntry(text))
      ),
    set: (key, entry, ttlMs) =>
      Effect.asVoid(
        command("set", key, () => client.set(prefix + key, JSON.stringify(entry), "PX", Math.max(1, Math.ceil(ttlMs))))
      ),
    delete: (key) => Effect.asVoid(command("del", key, () => client.del(prefix + key))),
    ready: (ms = 5000) => whenReady(client, ms),
    close: async () => {
      if (closed) return
      closed = true
      if (owned) await closeClient(client)
    }
  }
}

/**
 * Parses a stored entry. Its shape is not checked here: the engine re-digests `output` and treats anything that does
 * not verify (including text that is not an entry at all) as a poisoning, which is recorded and deleted, rather than as
 * a store error, which would be silently counted.
 */
const decodeEntry = (text: string): DeterminismEngine.CacheEntry => {
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value === "object" && value !== null && !Array.isArray(value))
      return value as DeterminismEngine.CacheEntry
  } catch {
    // fall through: not JSON
  }
  return NOT_AN_ENTRY
}

const NOT_AN_ENTRY = Object.freeze({
  output: undefined,
  outputDigest: "not-an-entry",
  metadata: { tier: 0, storedAt: "" },
  provenance: { runtimeFingerprint: "", policySnapshotId: "", toolVersion: "" },
  expiresAt: 0
}) as unknown as DeterminismEngine.CacheEntry
