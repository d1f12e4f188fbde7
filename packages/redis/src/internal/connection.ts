/**
 * The Redis connections of this package: one URL default, and clients that fail fast while Redis is down.
 * @module
 */
import type { RedisOptions as BullRedisOptions } from "bullmq"
import { Redis, type RedisOptions } from "ioredis"

/** Where Redis is when neither an option nor `REDIS_URL` says otherwise. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"

/** The URL to connect to: the option, else `REDIS_URL`, else {@link DEFAULT_REDIS_URL}. */
export const redisUrl = (url?: string): string => {
  if (url !== undefined) return url
  const env = process.env["REDIS_URL"]
  return env !== undefined && env !== "" ? env : DEFAULT_REDIS_URL
}

/** Reconnect quickly at first, then every 2 s at most: a returning Redis is used again within seconds. */
export const reconnectDelay = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000)

/**
 * A client for request-path commands (cache reads, enqueues, grant checks). While Redis is unreachable a command must
 * fail at once rather than wait in ioredis' offline queue, and a command that gets no answer (a hung server, a black
 * hole in the network) must fail after `commandTimeoutMs`; the client keeps reconnecting in the background.
 */
export const failFastClient = (
  url: string,
  commandTimeoutMs: number,
  extra?: RedisOptions,
  connectionName?: string
): Redis => {
  // The RESP3 reply mapping would change reply shapes this package parses; it stays at its default.
  const { replyMapping: _replyMapping, ...rest } = extra ?? {}
  return new Redis(url, {
    retryStrategy: reconnectDelay,
    connectTimeout: Math.max(1000, commandTimeoutMs),
    ...rest,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    ...(connectionName !== undefined ? { connectionName } : {})
  })
}

/**
 * Options for BullMQ's blocking connections (a worker's fetch, the producer's event stream): BullMQ requires them to
 * wait for Redis rather than fail (`maxRetriesPerRequest: null`), and creates the client itself.
 */
export const blockingOptions = (url: string, extra?: RedisOptions): BullRedisOptions =>
  // BullMQ hands these to ioredis unchanged; its own option type differs only in optional-property spelling.
  ({
    retryStrategy: reconnectDelay,
    ...extra,
    url,
    maxRetriesPerRequest: null
  }) as BullRedisOptions

/**
 * Resolves true once `client` is ready, false after `timeoutMs` or when it is closed for good; with `failOnError`, also
 * false at its first connection failure (a refused connection answers at once, so there is no need to wait).
 */
export const whenReady = (client: Redis, timeoutMs: number, failOnError = false): Promise<boolean> => {
  if (client.status === "ready") return Promise.resolve(true)
  if (client.status === "end") return Promise.resolve(false)
  return new Promise<boolean>((resolve) => {
    const failures = failOnError ? ["end", "error", "close"] : ["end"]
    const done = (ok: boolean) => {
      clearTimeout(timer)
      client.off("ready", onReady)
      for (const f of failures) client.off(f, onFail)
      resolve(ok)
    }
    const onReady = () => done(true)
    const onFail = () => done(false)
    const timer = setTimeout(() => done(false), timeoutMs)
    timer.unref()
    client.on("ready", onReady)
    for (const f of failures) client.on(f, onFail)
  })
}

/**
 * Runs a command on a fail-fast client. While the client is still making its first connection (or a reconnection is in
 * progress) the command waits for it, up to `timeoutMs`; while Redis is known to be down it fails at once.
 */
export const whenUsable = async <A>(client: Redis, timeoutMs: number, run: () => Promise<A>): Promise<A> => {
  const status = client.status
  if (status === "connecting" || status === "connect") await whenReady(client, timeoutMs, true)
  return run()
}

/** Closes a client this package created: politely if it can, at once otherwise. */
export const closeClient = async (client: Redis): Promise<void> => {
  if (client.status === "end") return
  if (client.status !== "ready") {
    client.disconnect()
    return
  }
  const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 1000).unref())
  const quit = client.quit().then(
    () => "quit" as const,
    () => "failed" as const
  )
  if ((await Promise.race([quit, timer])) !== "quit") client.disconnect()
}

/** The message of anything thrown, without stack or secrets of the connection URL. */
export const describeError = (e: unknown): string =>
  e instanceof Error ? e.message : typeof e === "string" ? e : "unexpected failure"
