/**
 * Rate-limited warnings: a Redis outage fails every request, and one log line per request would flood the logs exactly
 * when they are needed.
 * @module
 */

/**
 * The part of a logger this package uses. A pino `Logger` fits (`pino().child({ component: "egl-redis" })`), and so
 * does anything with a `warn(object, message)` method.
 */
export interface WarnLogger {
  warn(obj: Record<string, unknown>, msg: string): void
}

/** A warn function that logs at most once per `intervalMs` and reports how many warnings it held back meanwhile. */
export const throttledWarn = (
  logger: WarnLogger | undefined,
  intervalMs: number
): ((obj: Record<string, unknown>, msg: string) => void) => {
  if (logger === undefined) return () => {}
  let last = Number.NEGATIVE_INFINITY
  let suppressed = 0
  return (obj, msg) => {
    const now = Date.now()
    if (now - last < intervalMs) {
      suppressed++
      return
    }
    last = now
    const line = suppressed > 0 ? { ...obj, suppressed } : obj
    suppressed = 0
    try {
      logger.warn(line, msg)
    } catch {
      // A failing logger must not turn a cache miss into a failed admission.
    }
  }
}
