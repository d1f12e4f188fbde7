/**
 * The load side of the adapter benchmark: starting a server process (`bench/adapter-server.ts`) pinned to its core,
 * driving it with autocannon, and reading per-core CPU time from /proc/stat to see other work on the machine.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import autocannon from "autocannon"
import { BODY, HEADERS, PATHS, type Adapter, type FromServer, type ToServer, type Variant } from "./adapter-request.ts"

const here = dirname(fileURLToPath(import.meta.url))

/** The CPU the servers run on (`ADAPTER_SERVER_CPU`, default 1); the load generator should run on another. */
export const SERVER_CPU = process.env.ADAPTER_SERVER_CPU ?? "1"

const USER_HZ = 100

/** Busy time of each CPU since boot, µs (everything but idle and iowait); empty when /proc/stat is unavailable. */
export const coreBusy = (): Map<string, number> => {
  const busy = new Map<string, number>()
  try {
    for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
      const m = /^cpu(\d+) (.*)$/.exec(line)
      if (m === null) continue
      const f = m[2]!.trim().split(/\s+/).map(Number)
      const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
      busy.set(m[1]!, ((total - f[3]! - f[4]!) * 1e6) / USER_HZ)
    }
  } catch {
    // not Linux: no contention figures
  }
  return busy
}

/**
 * Waits until both CPUs have been nearly idle (each under `threshold` busy) for one second, or `maxSeconds` passed;
 * resolves with the seconds waited. Other people's tests on a shared machine come in bursts: this lets them pass.
 */
export const waitForQuiet = async (maxSeconds: number, threshold = 0.05): Promise<number> => {
  const t0 = performance.now()
  for (;;) {
    const b0 = coreBusy()
    const w0 = performance.now()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const b1 = coreBusy()
    const wall = (performance.now() - w0) * 1e3
    const busiest = Math.max(0, ...[...b1].map(([core, t]) => (t - (b0.get(core) ?? t)) / wall))
    const waited = (performance.now() - t0) / 1e3
    if (busiest < threshold || waited >= maxSeconds) return waited
  }
}

/** A server process, ready on `port`. */
export interface Server {
  readonly port: number
  readonly child: ChildProcess
  /** Sends a message and resolves with the server's answer. */
  request(m: ToServer): Promise<FromServer>
}

/**
 * Starts `adapter-server.ts <adapter> <variant>` as `taskset -c SERVER_CPU node …` (`NODE_ENV=production`, as a
 * deployment runs), with `env` added to its environment; resolves once it listens.
 */
export const startServer = async (
  adapter: Adapter,
  variant: Variant,
  env: Readonly<Record<string, string>> = {}
): Promise<Server> => {
  const node = [
    process.execPath,
    "--conditions=@egl/source",
    "--import",
    "tsx",
    join(here, "adapter-server.ts"),
    adapter,
    variant
  ]
  const child = spawn("taskset", ["-c", SERVER_CPU, ...node], {
    cwd: join(here, ".."),
    env: { ...process.env, NODE_ENV: "production", ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const next = (): Promise<FromServer> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: FromServer) => {
        child.off("exit", onExit)
        resolve(m)
      }
      const onExit = (code: number | null) => {
        child.off("message", onMessage)
        reject(new Error(`the ${adapter} ${variant} server exited with ${code}`))
      }
      child.once("message", onMessage)
      child.once("exit", onExit)
    })
  const ready = await next()
  if (ready.type !== "ready") throw new Error(`unexpected message ${JSON.stringify(ready)}`)
  return {
    port: ready.port,
    child,
    request: (m) => {
      const answer = next()
      child.send(m)
      return answer
    }
  }
}

/**
 * Runs autocannon against `adapter`'s route: `connections` connections, pipelining 1, the fixed body and headers, for
 * `seconds`. Every response's time (µs) is pushed to `latencies` when given: autocannon's own latency histogram has 1 ms
 * resolution.
 */
export const cannon = (
  port: number,
  adapter: Adapter,
  connections: number,
  seconds: number,
  latencies?: Array<number>
): autocannon.Instance & PromiseLike<autocannon.Result> => {
  // Without a callback, autocannon returns its instance (an EventEmitter), made thenable; the typings only say Promise.
  const instance = autocannon({
    url: `http://127.0.0.1:${port}${PATHS[adapter]}`,
    method: "POST",
    headers: HEADERS,
    body: JSON.stringify(BODY),
    connections,
    pipelining: 1,
    duration: seconds
  }) as unknown as autocannon.Instance & PromiseLike<autocannon.Result>
  if (latencies !== undefined)
    instance.on("response", (_client, _status, _bytes, responseTime: number) => latencies.push(responseTime * 1e3))
  return instance
}
