/** Measurement helpers: clocks, percentiles, medians, number formatting. */
import { readFileSync } from "node:fs"
import { cpus } from "node:os"

/** Nanoseconds, monotonic. */
export const now = (): bigint => process.hrtime.bigint()

/** Seconds elapsed since `t0`. */
export const secondsSince = (t0: bigint): number => Number(now() - t0) / 1e9

/** Median of a list of numbers. */
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Nearest-rank percentile of sorted samples. */
export const percentile = (sorted: Float64Array, p: number): number => {
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** Runs a full garbage collection when the process was started with --expose-gc. */
export const collect = (): void => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc !== undefined) gc()
}

/** Formats a duration given in nanoseconds. */
export const fmtNs = (ns: number): string =>
  ns >= 1e6
    ? `${(ns / 1e6).toFixed(2)} ms`
    : ns >= 1e3
      ? `${(ns / 1e3).toFixed(ns >= 1e5 ? 0 : 1)} µs`
      : `${ns.toFixed(0)} ns`

/** Formats a rate (per second). */
export const fmtRate = (r: number): string =>
  r >= 1e6
    ? `${(r / 1e6).toFixed(2)} M/s`
    : r >= 1e3
      ? `${(r / 1e3).toFixed(r >= 1e5 ? 0 : 1)} k/s`
      : `${r.toFixed(0)} /s`

/** Formats a ratio. */
export const fmtX = (x: number): string => `${x >= 10 ? x.toFixed(0) : x.toFixed(1)}×`

/** Facts about the machine and the process, for the report. */
export const machineFacts = (): {
  readonly node: string
  readonly cpu: string
  readonly cores: number
  readonly pinned: string
  readonly gc: boolean
} => {
  let cpu = cpus()[0]?.model ?? "unknown"
  let pinned = "unknown"
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))
    if (m !== null) cpu = m[1]!.trim()
  } catch {
    // not Linux: keep os.cpus()
  }
  try {
    const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync("/proc/self/status", "utf8"))
    if (m !== null) pinned = m[1]!.trim()
  } catch {
    // not Linux
  }
  return {
    node: process.version,
    cpu,
    cores: cpus().length,
    pinned,
    gc: typeof (globalThis as { gc?: unknown }).gc === "function"
  }
}
