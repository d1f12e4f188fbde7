/**
 * A shared store of used grants, so "a grant is used at most once" (SPEC §3 invariant 6) holds across a fleet of
 * workers and API instances, not only inside one process.
 *
 * Core's default grant store is in memory: it serves one process. When envelopes are dispatched by several processes
 * (workers of a tier on several machines, API instances that execute locally), an envelope replayed to another process
 * would find its grant unused there. This store marks a grant used with one atomic `SET key NX` in Redis, so of any
 * number of concurrent or later uses exactly one succeeds. It fails closed: when Redis cannot answer, `consume` fails
 * with `GrantStoreUnavailable` and nothing is dispatched.
 *
 * @example
 * ```ts
 * const grants = RedisGrantStore.make({ url: process.env.REDIS_URL })
 * const egl = await createGovernance({ registry, policy, ledger, grants })
 * ```
 * @module
 */
import { CapabilityGuard } from "@egl/core"
import { Duration, Effect } from "effect"
import type { Redis, RedisOptions } from "ioredis"
import { ConfigInvalid, nonEmptyOrUndefined, positiveOrUndefined } from "./internal/config.ts"
import { closeClient, describeError, failFastClient, redisUrl, whenReady, whenUsable } from "./internal/connection.ts"

export { ConfigInvalid } from "./internal/config.ts"

/** Default key prefix. */
export const DEFAULT_PREFIX = "egl:grant:"

/**
 * How long a used mark outlives its grant, in milliseconds. The mark only has to last until the grant has expired on
 * every clock that checks it; the margin covers clock skew between the processes and the Redis server.
 */
export const EXPIRY_MARGIN_MS = 60_000

/** Options of {@link make}. */
export interface Options {
  /** A client you own (not closed by `close`); exclusive with `url`. */
  readonly redis?: Redis | undefined
  /** Redis URL for a client this store creates (default `REDIS_URL`, else `redis://127.0.0.1:6379`). */
  readonly url?: string | undefined
  /** Extra ioredis options for the owned client. */
  readonly redisOptions?: RedisOptions | undefined
  /** Prefix of every key (default {@link DEFAULT_PREFIX}). */
  readonly prefix?: string | undefined
  /** A command without an answer after this many milliseconds fails (default 500). */
  readonly commandTimeoutMs?: number | undefined
}

/** A Redis grant store. */
export interface RedisGrantStore extends CapabilityGuard.GrantStore {
  /** The client in use. */
  readonly client: Redis
  /** The key prefix. */
  readonly prefix: string
  /** Resolves true once the client is connected, false after `timeoutMs` (default 5000) without it. */
  ready(timeoutMs?: number): Promise<boolean>
  /** Closes the client if the store created it. Idempotent. */
  close(): Promise<void>
}

/** A grant store on Redis. Throws {@link ConfigInvalid} for unusable options. */
export const make = (options: Options = {}): RedisGrantStore => {
  if (options.redis !== undefined && options.url !== undefined) {
    throw new ConfigInvalid({ detail: "give either redis (a client) or url, not both" })
  }
  nonEmptyOrUndefined("prefix", options.prefix)
  nonEmptyOrUndefined("url", options.url)
  positiveOrUndefined("commandTimeoutMs", options.commandTimeoutMs)
  const prefix = options.prefix ?? DEFAULT_PREFIX
  const timeoutMs = options.commandTimeoutMs ?? 500
  const owned = options.redis === undefined
  const client = options.redis ?? failFastClient(redisUrl(options.url), timeoutMs, options.redisOptions, "egl-grants")
  // Connection failures surface as GrantStoreUnavailable on use; the event itself needs a listener to stay quiet.
  if (owned) client.on("error", () => {})
  let closed = false

  const unavailable = (detail: string) =>
    new CapabilityGuard.GrantStoreUnavailable({ detail: `redis grant store: ${detail}` })

  return {
    client,
    prefix,
    consume: (grantId, expiresAtMs, nowMs) => {
      if (!(nowMs < expiresAtMs)) return Effect.succeed("expired" as const)
      const ttl = Math.ceil(expiresAtMs - nowMs) + EXPIRY_MARGIN_MS
      return Effect.tryPromise({
        try: () => whenUsable(client, timeoutMs, () => client.set(prefix + grantId, String(nowMs), "PX", ttl, "NX")),
        catch: (e) => unavailable(describeError(e))
      }).pipe(
        Effect.timeoutOrElse({
          duration: Duration.millis(timeoutMs),
          orElse: () => Effect.fail(unavailable(`no answer within ${timeoutMs} ms`))
        }),
        Effect.map((reply) => (reply === "OK" ? ("consumed" as const) : ("reused" as const)))
      )
    },
    ready: (ms = 5000) => whenReady(client, ms),
    close: async () => {
      if (closed) return
      closed = true
      if (owned) await closeClient(client)
    }
  }
}
