/**
 * One app instance of the PostgreSQL ledger benchmark (`bench/distributed.ts` starts 1 or 3 of them on one schema).
 *
 * argv: `single` (one caller, each append awaited: one transaction per record) or `group <inFlight>` (that many
 * independent callers through the `Ledger` service, which batches what arrives during a commit into one transaction),
 * then the seconds to run. env: EGL_BENCH_PG_URL (with `?schema=`). Opens the ledger, warms up, prints `ready`, waits
 * for `go` on stdin (so all instances start together), runs, prints one JSON line with its counts and CPU time, and
 * closes on the next line.
 */
import { createInterface } from "node:readline"
import { Effect } from "effect"
import { Ledger } from "@egl/core"
import { PostgresLedger } from "@egl/ledger-postgres"
import { openLedger } from "./ledger.ts"
import { now, secondsSince } from "./stats.ts"

const [mode, a1, a2] = process.argv.slice(2)
const inFlight = mode === "group" ? Number(a1) : 1
const seconds = Number(mode === "group" ? a2 : a1)
const url = process.env["EGL_BENCH_PG_URL"]
if ((mode !== "single" && mode !== "group") || !(seconds > 0) || !(inFlight > 0) || url === undefined)
  throw new Error("usage: distributed-ledger-child.ts single <seconds> | group <inFlight> <seconds> (EGL_BENCH_PG_URL)")

// ~1.3 KB bodies, like the canonical form of an admitted envelope; ids differ per record.
const padding = "x".repeat(1200)
const drafts: Array<Ledger.RecordDraft> = []
for (let i = 0; i < 8192; i++) {
  const id = `env-${process.pid}-${i.toString(16).padStart(8, "0")}`
  drafts.push(Ledger.draft("decision", new Date().toISOString(), id, JSON.stringify({ id, i, padding })))
}

let storage: PostgresLedger.PostgresStorage | undefined
const opened = await openLedger(
  PostgresLedger.open(url, { applicationName: "egl-bench", pool: 4 }).pipe(
    Effect.tap((s) =>
      Effect.sync(() => {
        storage = s
      })
    )
  ),
  { checkpointIntervalMs: 0 }
)
const { ledger } = opened

let next = 0
const appendOne = () => Effect.runPromise(ledger.append(drafts[next++ % drafts.length]!))

// Warm-up: connections, prepared paths, JIT.
for (let i = 0; i < 200; i++) await appendOne()

process.stdout.write("ready\n")
const rl = createInterface({ input: process.stdin })
await new Promise<void>((resolve) => rl.once("line", () => resolve()))
rl.close()

const commits0 = storage!.commits
const cpu0 = process.cpuUsage()
const t0 = now()
const deadline = t0 + BigInt(Math.round(seconds * 1e9))
let done = 0
const latencies: Array<number> = []
const caller = async () => {
  while (now() < deadline) {
    const s = now()
    await appendOne()
    latencies.push(Number(now() - s))
    done++
  }
}
await Promise.all(Array.from({ length: inFlight }, caller))
const elapsed = secondsSince(t0)
const cpu = process.cpuUsage(cpu0)
const commits = storage!.commits - commits0
latencies.sort((x, y) => x - y)
process.stdout.write(
  JSON.stringify({
    records: done,
    seconds: elapsed,
    commits,
    cpuShare: (cpu.user + cpu.system) / 1e6 / elapsed,
    p50Ns: latencies[Math.floor(latencies.length * 0.5)] ?? 0,
    p99Ns: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0
  }) + "\n"
)
// Stay connected until told: the parent reads PostgreSQL's CPU time before the sessions (and their counters) go.
const rl2 = createInterface({ input: process.stdin })
await new Promise<void>((resolve) => rl2.once("line", () => resolve()))
rl2.close()
await opened.close()
process.exit(0)
