/**
 * The reference app past one machine, on this one: two API instances and a worker per tier the demo policy grants
 * (tiers 2 and 3), all on one PostgreSQL ledger and one Redis (cache, BullMQ queues). `pnpm start:cluster` from the
 * repository root; stop with Ctrl-C.
 *
 *   DATABASE_URL  PostgreSQL for the ledger and grants (default postgres://postgres@127.0.0.1:5432/test, schema egl_demo)
 *   REDIS_URL     Redis for the cache and queues (default redis://127.0.0.1:6379)
 *   PORT          first API port (default 3000; the second instance listens on PORT + 1)
 */
import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"

const database = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const ledger = database.includes("schema=")
  ? database
  : `${database}${database.includes("?") ? "&" : "?"}schema=egl_demo`
const port = Number(process.env["PORT"] ?? 3000)
const env = {
  ...process.env,
  EGL_LEDGER: ledger,
  EGL_CACHE: "redis",
  EGL_POOLS: "bullmq",
  REDIS_URL: process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"
}
const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url))
const node = (name: string, args: ReadonlyArray<string>, extra: NodeJS.ProcessEnv) =>
  spawn(process.execPath, ["--conditions=@egl/source", "--import", "tsx", script(name), ...args], {
    env: { ...env, ...extra },
    stdio: ["ignore", "inherit", "inherit"]
  })

const children: Array<ChildProcess> = [
  node("worker.ts", ["2"], {}),
  node("worker.ts", ["3"], {}),
  node("main.ts", [], { PORT: String(port) }),
  node("main.ts", [], { PORT: String(port + 1) })
]
console.log(
  `cluster: API on :${port} and :${port + 1}, tier 2 and 3 workers; ledger ${ledger.replace(/:[^:@/]*@/, ":***@")}`
)

let stopping = false
const stop = (code: number) => {
  if (stopping) return
  stopping = true
  for (const c of children) c.kill("SIGTERM")
  setTimeout(() => process.exit(code), 5000).unref()
  void Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r))))).then(
    () => process.exit(code)
  )
}
for (const c of children)
  c.once("exit", (code) => !stopping && (console.error(`cluster: a process exited (${code})`), stop(1)))
process.once("SIGINT", () => stop(0))
process.once("SIGTERM", () => stop(0))
