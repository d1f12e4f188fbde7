/**
 * One server of the adapter benchmark, in its own process (spawned by `bench/adapters.ts`, pinned with `taskset`):
 *
 *   node --conditions=@egl/source --import tsx bench/adapter-server.ts <express|nest|trpc> <plain|governed|governed-sqlite>
 *
 * It serves the trivial handler of `bench/adapter-request.ts` on 127.0.0.1 (port 0) — without EGL (`plain`), or behind
 * the adapter with the reference app's demo registry, policy and identity (`governed`: memory ledger; `governed-sqlite`:
 * `@egl/ledger-sqlite` in a temp directory) — and talks to the parent over the IPC channel: `ready` with its port,
 * `start`/`stop` around a measured window (CPU time used, ledger records appended), `exit` (closes the server and the
 * governance instance after verifying the ledger's chain).
 *
 * With `ADAPTER_PROFILE=<file>.cpuprofile` in its environment, the measured window (`start` → `stop`) is CPU-profiled
 * through the inspector (sampling every 1 ms) and the profile written there (see `bench/profile-adapter.ts`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { Session } from "node:inspector/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createGovernance, Identity, type GovernanceInstance } from "@egl/core"
import { SqliteLedger } from "@egl/ledger-sqlite"
import { Demo } from "@egl/serving-api"
import { ADAPTERS, VARIANTS, type Adapter, type FromServer, type ToServer, type Variant } from "./adapter-request.ts"

/** A running server of one adapter. */
export interface Served {
  readonly port: number
  close(): Promise<void>
}

/** What every adapter's server module exports. */
export interface ServerModule {
  /** Serves the handler; governed when `governance` is given (identity: the demo API keys). */
  serve(governance: GovernanceInstance | undefined, identity: Identity.IdentityResolver): Promise<Served>
}

const adapter = process.argv[2] as Adapter
const variant = process.argv[3] as Variant
if (!ADAPTERS.includes(adapter) || !VARIANTS.includes(variant)) {
  throw new Error(`usage: adapter-server.ts <${ADAPTERS.join("|")}> <${VARIANTS.join("|")}>`)
}
/** Sends a message to the parent (or prints it when run by hand); resolves once it is handed to the channel. */
const send = (m: FromServer): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined) {
      console.log(JSON.stringify(m))
      resolve()
    } else process.send(m, undefined, {}, () => resolve())
  })

let dir: string | undefined
let governance: GovernanceInstance | undefined
if (variant !== "plain") {
  if (variant === "governed-sqlite") dir = mkdtempSync(join(tmpdir(), "egl-bench-adapter-"))
  governance = await createGovernance({
    registry: Demo.registry,
    policy: Demo.policy,
    ledger: dir === undefined ? "memory" : { storage: SqliteLedger.open(join(dir, "ledger.db")) },
    logger: false
  })
}
const modules: Record<Adapter, () => Promise<ServerModule>> = {
  express: () => import("./adapter-express.ts"),
  nest: () => import("./adapter-nest.ts"),
  trpc: () => import("./adapter-trpc.ts")
}
const served = await (await modules[adapter]()).serve(governance, Identity.fromBearerToken(Demo.apiKeys))

const profileFile = process.env.ADAPTER_PROFILE
const profiler = profileFile !== undefined && profileFile !== "" ? new Session() : undefined
if (profiler !== undefined) {
  profiler.connect()
  await profiler.post("Profiler.enable")
  // 1 ms: a finer interval costs the server noticeably more (100 µs almost halved its throughput).
  await profiler.post("Profiler.setSamplingInterval", { interval: 1000 })
}

const records = async (): Promise<number> => (governance === undefined ? 0 : (await governance.head()).size)
let window: { cpu: NodeJS.CpuUsage; wall: bigint; records: number } | undefined

process.on("message", (m: ToServer) => {
  void (async () => {
    switch (m.type) {
      case "start":
        await profiler?.post("Profiler.start")
        window = { cpu: process.cpuUsage(), wall: process.hrtime.bigint(), records: await records() }
        await send({ type: "started" })
        return
      case "stop": {
        const w = window!
        const cpu = process.cpuUsage(w.cpu)
        const wallUs = Number(process.hrtime.bigint() - w.wall) / 1e3
        const appended = (await records()) - w.records
        if (profiler !== undefined) {
          const { profile } = await profiler.post("Profiler.stop")
          writeFileSync(profileFile!, JSON.stringify(profile))
        }
        await send({
          type: "stopped",
          cpuUs: cpu.user + cpu.system,
          wallUs,
          ...(governance !== undefined ? { records: appended } : {})
        })
        return
      }
      case "exit": {
        await served.close()
        let ledger: { records: number; verified: boolean } | undefined
        if (governance !== undefined) {
          const report = await governance.verifyLedger()
          ledger = { records: report.length, verified: report.ok }
          await governance.close()
        }
        if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
        await send(ledger !== undefined ? { type: "closed", ledger } : { type: "closed" })
        process.disconnect?.()
        process.exit(0)
      }
    }
  })().catch((e: unknown) => {
    console.error(e)
    process.exit(1)
  })
})
await send({ type: "ready", port: served.port })
