/**
 * The machine's PostgreSQL and Redis for cluster tests: a fresh schema and a fresh Redis key prefix per test file,
 * removed afterwards; tier workers of the reference app as child processes.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import { Redis } from "ioredis"
import pg from "pg"

export const DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
export const REDIS_URL = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/** A unique name for this run (`egl_t_<hex>`). */
export const uniqueName = (label: string) => `egl_t_${label}_${randomBytes(4).toString("hex")}`

/** The database URL with its port replaced (to go through a proxy) and a schema parameter. */
export const ledgerUrl = (schema: string, port?: number) => {
  const url = new URL(DATABASE_URL)
  if (port !== undefined) url.port = String(port)
  url.searchParams.set("schema", schema)
  return url.toString()
}

/** The Redis URL with its port replaced. */
export const redisUrl = (port?: number) => {
  const url = new URL(REDIS_URL)
  if (port !== undefined) url.port = String(port)
  return url.toString()
}

/** Drops a schema and deletes every Redis key under a prefix. */
export const cleanUp = async (schema: string, redisPrefix: string) => {
  const client = new pg.Client({ connectionString: DATABASE_URL })
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  await client.end()
  const redis = new Redis(REDIS_URL)
  let cursor = "0"
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${redisPrefix}*`, "COUNT", 1000)
    if (keys.length > 0) await redis.del(...keys)
    cursor = next
  } while (cursor !== "0")
  await redis.quit()
}

const workerScript = fileURLToPath(new URL("../../apps/serving-api/src/worker.ts", import.meta.url))

/** Starts a tier worker of the reference app in a child process; resolves once it is ready. */
export const startWorker = async (tier: number, env: NodeJS.ProcessEnv): Promise<ChildProcess> => {
  const child = spawn(process.execPath, ["--conditions=@egl/source", "--import", "tsx", workerScript, String(tier)], {
    env: { ...process.env, ...env, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tier ${tier} worker not ready:\n${output}`)), 30_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes("worker ready")) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`tier ${tier} worker exited (${code}):\n${output}`))
    })
  })
  child.stdout!.resume()
  child.stderr!.resume()
  return child
}

/** Stops a child process and waits for it. */
export const stopProcess = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
    setTimeout(() => child.kill("SIGKILL"), 5000).unref()
  })

/** A deploy body of the reference scenario. */
export const deployBody = (environment: string, gpus: number, extra: Record<string, unknown> = {}) => ({
  model: { id: "llama-3-8b", version: "2026.11.1" },
  resources: { gpus, memoryGiB: 40, replicas: 2 },
  environment,
  ...extra
})

/** POSTs a deployment as the holder of `key`. */
export const deploy = (base: string, key: string, body: unknown) =>
  fetch(`${base}/serving/deploy_model`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
