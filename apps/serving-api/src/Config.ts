/**
 * The reference app's configuration, from the environment (SPEC §11): `PORT` (default 3000), `EGL_LEDGER` (`memory`,
 * `file:<path>`, `sqlite:<path>` — the default, `sqlite:<data>/ledger.db` — or `postgres://…`), `EGL_DATA_DIR` (default
 * `.data` in the app's folder: the SQLite ledger and the signing key), `EGL_BODY_LIMIT` (default `64kb`), `LOG_LEVEL`
 * (default `info`; `silent` turns logs off).
 *
 * Past one machine: `EGL_CACHE=redis` shares the deterministic cache in Redis, `EGL_POOLS=bullmq` runs admitted
 * deployments on tier workers (`src/worker.ts`) through BullMQ queues, both on `REDIS_URL` (default
 * `redis://127.0.0.1:6379`, keys under `EGL_REDIS_PREFIX`, default `egl`); with a `postgres://…` ledger every instance appends to the same chain and single-use grants
 * are shared in PostgreSQL.
 * @module
 */
import { LedgerUrl } from "@egl/core"
import { fileURLToPath } from "node:url"
import { join, resolve } from "node:path"

/** The app's settings. */
export interface Config {
  readonly port: number
  readonly host: string
  readonly ledger: LedgerUrl.LedgerUrl
  readonly dataDir: string
  readonly bodyLimit: string
  readonly logLevel: string
  /** Where the deterministic cache lives. */
  readonly cache: "memory" | "redis"
  /** Where admitted deployments run: in this process, or on tier workers through BullMQ. */
  readonly pools: "local" | "bullmq"
  readonly redisUrl: string
  /** Prefix of every Redis key this deployment uses (queues, cache, grants); deployments sharing a Redis differ here. */
  readonly redisPrefix: string
}

const oneOf = <A extends string>(
  name: string,
  value: string | undefined,
  allowed: ReadonlyArray<A>,
  fallback: A
): A => {
  if (value === undefined || value === "") return fallback
  if (!(allowed as ReadonlyArray<string>).includes(value)) {
    throw new Error(`${name} must be one of ${allowed.join(", ")}, not "${value}"`)
  }
  return value as A
}

/** The app's own folder (where `.data` lives by default). */
export const APP_DIR = resolve(fileURLToPath(new URL("..", import.meta.url)))

/** Reads the configuration; throws with a clear message on an invalid `PORT` or `EGL_LEDGER`. */
export const fromEnv = (env: NodeJS.ProcessEnv = process.env): Config => {
  const port = Number(env["PORT"] ?? 3000)
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, not "${env["PORT"]}"`)
  const dataDir = resolve(env["EGL_DATA_DIR"] ?? join(APP_DIR, ".data"))
  return {
    port,
    host: env["HOST"] ?? "127.0.0.1",
    ledger: LedgerUrl.parseSync(env["EGL_LEDGER"] ?? `sqlite:${join(dataDir, "ledger.db")}`),
    dataDir,
    bodyLimit: env["EGL_BODY_LIMIT"] ?? "64kb",
    logLevel: env["LOG_LEVEL"] ?? "info",
    cache: oneOf("EGL_CACHE", env["EGL_CACHE"], ["memory", "redis"], "memory"),
    pools: oneOf("EGL_POOLS", env["EGL_POOLS"], ["local", "bullmq"], "local"),
    redisUrl: env["REDIS_URL"] ?? "redis://127.0.0.1:6379",
    redisPrefix: env["EGL_REDIS_PREFIX"] ?? "egl"
  }
}
