/**
 * `pnpm bench:adapters` (from `test/`): the adapter benchmark (see README.md beside this file).
 *
 *   taskset -c 0 node --conditions=@egl/source --import tsx bench/adapters.ts [express nest trpc] [--out file.md]
 *
 * For each adapter, the same trivial handler (`bench/adapter-request.ts`) is served without EGL (`plain`) and behind the
 * adapter (`governed`, memory ledger; for Express also `governed-sqlite`), each server in its own process pinned to
 * CPU 1 (`taskset -c 1`, `ADAPTER_SERVER_CPU` to change), while autocannon runs here, on the other core. Every
 * measurement starts a fresh server, warms it up (`ADAPTER_WARMUP` s, default 2) at the measured connection count, then
 * runs autocannon for `ADAPTER_DURATION` s (default 5) at 1 and at 50 connections, pipelining 1, with a fixed JSON body
 * and the bearer header. Rounds (`ADAPTER_ROUNDS`, default 3) interleave the variants (alternating their order) so drift
 * hits all of them; the report gives medians, and the governed/plain ratios are computed per round, then the median.
 *
 * Latency percentiles are computed here from every response's time (autocannon's own histogram has 1 ms resolution,
 * too coarse for a 50 µs target). The server reports the CPU time it used in the measured window (CPU per request) and
 * the ledger records appended. On a shared machine, each measurement first waits (up to `ADAPTER_QUIET_WAIT` s, default
 * 120) for both cores to be idle for a second; /proc/stat then tells how much other work ran on either core during the
 * window, and a measurement disturbed by more than 10 % of the server's core (30 % of the client's) is repeated (up to
 * four times).
 */
import { readFileSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { cannon, coreBusy, SERVER_CPU, startServer, waitForQuiet } from "./adapter-load.ts"
import { ADAPTERS, type Adapter, type Variant } from "./adapter-request.ts"
import { machineFacts, median, now, secondsSince } from "./stats.ts"

const ROUNDS = Math.max(1, Number(process.env.ADAPTER_ROUNDS ?? 3))
const DURATION = Math.max(1, Number(process.env.ADAPTER_DURATION ?? 5))
const WARMUP = Math.max(0, Number(process.env.ADAPTER_WARMUP ?? 2))
const CONNECTIONS = [1, 50] as const
type Connections = (typeof CONNECTIONS)[number]
/**
 * Share of the server's core other work may take during a window before the measurement is repeated; the client's core
 * gets more: autocannon uses under a third of it, and the kernel's loopback work (softirq, not charged to any process)
 * shows up there as 3–15 % "other work" on an otherwise idle machine.
 */
const FOREIGN_LIMIT = 0.1
const FOREIGN_LIMIT_CLIENT = 0.3
const RETRIES = 4
/** Longest wait for both cores to be idle before a measurement, s (`ADAPTER_QUIET_WAIT`). */
const QUIET_WAIT = Math.max(0, Number(process.env.ADAPTER_QUIET_WAIT ?? 120))

const args = process.argv.slice(2)
const outIndex = args.indexOf("--out")
const outFile = outIndex >= 0 ? args[outIndex + 1] : undefined
const chosen = args.filter((a, i) => !a.startsWith("--") && (outIndex < 0 || i !== outIndex + 1))
const adapters: ReadonlyArray<Adapter> = chosen.length > 0 ? ADAPTERS.filter((a) => chosen.includes(a)) : [...ADAPTERS]
if (chosen.some((a) => !(ADAPTERS as ReadonlyArray<string>).includes(a)))
  throw new Error(`unknown adapter in ${chosen.join(" ")}; choose among ${ADAPTERS.join(", ")}`)

const variantsOf = (adapter: Adapter): ReadonlyArray<Variant> =>
  adapter === "express" ? ["plain", "governed", "governed-sqlite"] : ["plain", "governed"]

const here = dirname(fileURLToPath(import.meta.url))
const started = now()
const log = (line = ""): void => console.log(line)

// ---------------------------------------------------------------------------------------------------------------------
// One measurement
// ---------------------------------------------------------------------------------------------------------------------
interface Measurement {
  /** Requests per second: autocannon's mean of its per-second samples. */
  readonly rps: number
  readonly p50Us: number
  readonly p99Us: number
  readonly requests: number
  /** Server CPU time per request, µs. */
  readonly cpuPerRequestUs: number
  /** Share of its core the server used. */
  readonly serverShare: number
  /** Share of its core this process (autocannon) used. */
  readonly clientShare: number
  /** Other work on the server's and the client's core, as a share of the window. */
  readonly foreignServer: number
  readonly foreignClient: number
  /** Ledger records appended per request (governed). */
  readonly recordsPerRequest?: number
  readonly verified?: boolean
}

let waitedTotal = 0
const measureOnce = async (adapter: Adapter, variant: Variant, connections: Connections): Promise<Measurement> => {
  if (QUIET_WAIT > 0) waitedTotal += await waitForQuiet(QUIET_WAIT)
  const server = await startServer(adapter, variant)
  try {
    if (WARMUP > 0) await cannon(server.port, adapter, connections, WARMUP)
    const latencies: Array<number> = []
    await server.request({ type: "start" })
    const busy0 = coreBusy()
    const cpu0 = process.cpuUsage()
    const wall0 = now()
    const result = await cannon(server.port, adapter, connections, DURATION, latencies)
    const cpu = process.cpuUsage(cpu0)
    const wallUs = Number(now() - wall0) / 1e3
    const busy1 = coreBusy()
    const stopped = await server.request({ type: "stop" })
    if (stopped.type !== "stopped") throw new Error(`unexpected message ${JSON.stringify(stopped)}`)
    const closed = await server.request({ type: "exit" })
    if (result.errors > 0 || result.non2xx > 0 || result.timeouts > 0)
      throw new Error(
        `${adapter} ${variant} at ${connections}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`
      )
    const sorted = Float64Array.from(latencies).sort()
    const at = (p: number) =>
      sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
    const clientCpuUs = cpu.user + cpu.system
    const busyOf = (core: string) => (busy1.get(core) ?? NaN) - (busy0.get(core) ?? NaN)
    const clientCore = machineFacts().pinned
    const requests = result.requests.total
    return {
      rps: result.requests.mean,
      p50Us: at(50),
      p99Us: at(99),
      requests,
      cpuPerRequestUs: stopped.cpuUs / requests,
      serverShare: stopped.cpuUs / stopped.wallUs,
      clientShare: clientCpuUs / wallUs,
      foreignServer: Math.max(0, (busyOf(SERVER_CPU) - stopped.cpuUs) / wallUs),
      foreignClient: /^\d+$/.test(clientCore) ? Math.max(0, (busyOf(clientCore) - clientCpuUs) / wallUs) : NaN,
      ...(stopped.records !== undefined ? { recordsPerRequest: stopped.records / requests } : {}),
      ...(closed.type === "closed" && closed.ledger !== undefined ? { verified: closed.ledger.verified } : {})
    }
  } finally {
    if (server.child.exitCode === null) server.child.kill()
  }
}

let repeated = 0
let keptDisturbed = 0
const measure = async (adapter: Adapter, variant: Variant, connections: Connections): Promise<Measurement> => {
  for (let attempt = 0; ; attempt++) {
    const m = await measureOnce(adapter, variant, connections)
    const disturbed = m.foreignServer > FOREIGN_LIMIT || m.foreignClient > FOREIGN_LIMIT_CLIENT
    if (!disturbed) return m
    if (attempt === RETRIES) {
      keptDisturbed++
      log(`  (kept although disturbed: ${RETRIES + 1} attempts)`)
      return m
    }
    repeated++
    log(
      `  (other work took ${(100 * m.foreignServer).toFixed(0)} % of the server core, ${(100 * m.foreignClient).toFixed(0)} % of the client core: repeating)`
    )
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Rounds
// ---------------------------------------------------------------------------------------------------------------------
const facts = machineFacts()
const loadAtStart = loadavg()
log(`# EGL adapter benchmark`)
log()
log(
  `node ${facts.node} · ${facts.cpu} · ${facts.cores} logical CPUs · autocannon on CPU ${facts.pinned}, servers on CPU ${SERVER_CPU} · ` +
    `${ROUNDS} round${ROUNDS === 1 ? "" : "s"} × ${DURATION} s (warm-up ${WARMUP} s) · load average ${loadAtStart.map((l) => l.toFixed(2)).join(" ")}`
)
if (!/^\d+$/.test(facts.pinned) || facts.pinned === SERVER_CPU)
  log(`warning: this process should run alone on a core other than the server's (run through \`pnpm bench:adapters\`)`)
log()

type Key = `${Adapter}/${Variant}/${Connections}`
const results = new Map<Key, Array<Measurement>>()
const fmtUs = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`)
const fmtRps = (r: number) => (r >= 1000 ? `${(r / 1000).toFixed(2)} k` : r.toFixed(0))

for (let round = 0; round < ROUNDS; round++) {
  log(`## Round ${round + 1}/${ROUNDS}`)
  for (const adapter of adapters) {
    for (const connections of CONNECTIONS) {
      const variants = round % 2 === 0 ? variantsOf(adapter) : [...variantsOf(adapter)].reverse()
      for (const variant of variants) {
        const m = await measure(adapter, variant, connections)
        const key: Key = `${adapter}/${variant}/${connections}`
        results.set(key, [...(results.get(key) ?? []), m])
        log(
          `- ${adapter} ${variant} @${connections}: ${fmtRps(m.rps)} req/s, p50 ${fmtUs(m.p50Us)}, p99 ${fmtUs(m.p99Us)}, ` +
            `server ${fmtUs(m.cpuPerRequestUs)} CPU/request (${(100 * m.serverShare).toFixed(0)} % of its core), ` +
            `client ${(100 * m.clientShare).toFixed(0)} %` +
            (m.recordsPerRequest !== undefined
              ? `, ${m.recordsPerRequest.toFixed(2)} records/request, ledger ${m.verified === true ? "verified" : "NOT VERIFIED"}`
              : "") +
            `; other work: ${(100 * m.foreignServer).toFixed(0)} % / ${(100 * m.foreignClient).toFixed(0)} %`
        )
      }
    }
  }
  log()
}

// ---------------------------------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------------------------------
const of = (adapter: Adapter, variant: Variant, c: Connections) => results.get(`${adapter}/${variant}/${c}`) ?? []
const med = (xs: ReadonlyArray<Measurement>, f: (m: Measurement) => number) => median(xs.map(f))
/** ` (min – max)` of several values, nothing for one. */
const spread = (xs: ReadonlyArray<number>, fmt: (x: number) => string) =>
  xs.length > 1 ? ` (${fmt(Math.min(...xs))} – ${fmt(Math.max(...xs))})` : ""
const ledgerName: Record<Variant, string> = {
  plain: "plain (no EGL)",
  governed: "governed, memory ledger",
  "governed-sqlite": "governed, SQLite ledger"
}

const rows: Array<string> = [
  `| adapter | server | req/s @1 | p50 @1 | p99 @1 | server CPU/req @1 | req/s @50 | p50 @50 | p99 @50 | server CPU/req @50 |`,
  `|---|---|---:|---:|---:|---:|---:|---:|---:|---:|`
]
for (const adapter of adapters) {
  for (const variant of variantsOf(adapter)) {
    const one = of(adapter, variant, 1)
    const fifty = of(adapter, variant, 50)
    if (one.length === 0 || fifty.length === 0) continue
    rows.push(
      `| ${adapter} | ${ledgerName[variant]} | ${fmtRps(med(one, (m) => m.rps))} | ${fmtUs(med(one, (m) => m.p50Us))} | ` +
        `${fmtUs(med(one, (m) => m.p99Us))} | ${fmtUs(med(one, (m) => m.cpuPerRequestUs))} | ` +
        `${fmtRps(med(fifty, (m) => m.rps))} | ${fmtUs(med(fifty, (m) => m.p50Us))} | ${fmtUs(med(fifty, (m) => m.p99Us))} | ` +
        `${fmtUs(med(fifty, (m) => m.cpuPerRequestUs))} |`
    )
  }
}

const ratioRows: Array<string> = [
  `| adapter | governed vs plain | throughput ratio @50 (min – max) | p50 delta @1 (min – max) | server CPU/req delta @50 | target (Express) | verdict |`,
  `|---|---|---:|---:|---:|---|---|`
]
const verdicts: Array<string> = []
for (const adapter of adapters) {
  for (const variant of variantsOf(adapter).filter((v) => v !== "plain")) {
    const g50 = of(adapter, variant, 50)
    const p50 = of(adapter, "plain", 50)
    const g1 = of(adapter, variant, 1)
    const p1 = of(adapter, "plain", 1)
    const n = Math.min(g50.length, p50.length, g1.length, p1.length)
    if (n === 0) continue
    // Paired by round: the variants of a round ran back to back.
    const ratios = Array.from({ length: n }, (_, i) => g50[i]!.rps / p50[i]!.rps)
    const deltas = Array.from({ length: n }, (_, i) => g1[i]!.p50Us - p1[i]!.p50Us)
    const cpuDelta = med(g50, (m) => m.cpuPerRequestUs) - med(p50, (m) => m.cpuPerRequestUs)
    const ratio = median(ratios)
    const delta = median(deltas)
    const headline = adapter === "express" && variant === "governed"
    const verdict = headline ? `${ratio >= 0.9 ? "PASS" : "**MISS**"} / ${delta <= 50 ? "PASS" : "**MISS**"}` : ""
    if (headline) verdicts.push(verdict)
    ratioRows.push(
      `| ${adapter} | ${ledgerName[variant]} | ${(100 * ratio).toFixed(0)} %${spread(ratios, (x) => `${(100 * x).toFixed(0)} %`)} | ` +
        `+${fmtUs(delta)}${spread(deltas, (x) => `+${fmtUs(x)}`)} | +${fmtUs(cpuDelta)} | ` +
        `${headline ? "≥ 90 % / ≤ +50 µs" : ""} | ${verdict} |`
    )
  }
}

const all = [...results.values()].flat()
const maxForeignServer = Math.max(...all.map((m) => m.foreignServer))
const maxForeignClient = Math.max(...all.map((m) => m.foreignClient))
const maxClient = Math.max(...all.map((m) => m.clientShare))
const unverified = all.filter((m) => m.verified === false).length
const records = all.filter((m) => m.recordsPerRequest !== undefined).map((m) => m.recordsPerRequest!)
const elapsed = secondsSince(started)
const report = [
  `# EGL adapter benchmark — results`,
  ``,
  `Measured ${new Date().toISOString()} by \`pnpm bench:adapters\` in ${elapsed.toFixed(0)} s: ${ROUNDS} round${ROUNDS === 1 ? "" : "s"}, ${DURATION} s per measurement after a ${WARMUP} s warm-up, medians.`,
  ``,
  `Machine: ${facts.cpu}, ${facts.cores} logical CPUs; autocannon ${autocannonVersion()} on CPU ${facts.pinned}, each server in its own process on CPU ${SERVER_CPU}; node ${facts.node}.`,
  ``,
  `Contention: 1-minute load average ${loadAtStart[0]!.toFixed(2)} at start, ${loadavg()[0]!.toFixed(2)} at the end; other work took at most ` +
    `${(100 * maxForeignServer).toFixed(0)} % of the server core and ${(100 * maxForeignClient).toFixed(0)} % of the client core during a kept measurement ` +
    `(${repeated} measurement${repeated === 1 ? "" : "s"} repeated for exceeding ${(100 * FOREIGN_LIMIT).toFixed(0)} % / ${(100 * FOREIGN_LIMIT_CLIENT).toFixed(0)} %; ${keptDisturbed} kept although still disturbed after ${RETRIES + 1} attempts; ${waitedTotal.toFixed(0)} s spent waiting for idle cores before measurements); autocannon used at most ${(100 * maxClient).toFixed(0)} % of its core.`,
  ``,
  `Ledger: ${records.length > 0 ? `${Math.min(...records).toFixed(2)}–${Math.max(...records).toFixed(2)} records appended per governed request` : "no governed run"}` +
    `; every governed server's ledger verified on exit: ${unverified === 0 ? "yes" : `NO (${unverified} failed)`}.`,
  ``,
  rows.join("\n"),
  ``,
  ratioRows.join("\n"),
  ``
].join("\n")

log(report)
log(
  `finished in ${elapsed.toFixed(0)} s${verdicts.length > 0 ? `; Express targets (throughput / p50): ${verdicts[0]}` : ""}`
)
if (outFile !== undefined) {
  let formatted = report
  try {
    const prettier = await import("prettier")
    formatted = await prettier.format(report, { ...(await prettier.resolveConfig(outFile)), parser: "markdown" })
  } catch {
    // keep the unformatted report
  }
  writeFileSync(outFile, formatted)
  log(`written to ${outFile}`)
}

function autocannonVersion(): string {
  try {
    const require = (p: string) => JSON.parse(readFileSync(p, "utf8")) as { version: string }
    return require(join(here, "..", "node_modules", "autocannon", "package.json")).version
  } catch {
    return "(version unknown)"
  }
}
