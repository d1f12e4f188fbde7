/**
 * A circuit breaker over consecutive failures, for the producer side of a tier pool.
 *
 * Core's `IsolationRouter` keeps its breaker inside the router (a failure ratio over a rolling window of in-process
 * task outcomes) and does not export it; a remote pool sees far fewer, coarser signals (an enqueue that fails, a result
 * that never comes), for which consecutive failures are the usual trigger. Closed until `failureThreshold` failures in
 * a row; then open (everything refused) for `cooldownMs`; then half-open, letting exactly one trial through, whose
 * success closes the breaker and whose failure opens it again.
 * @module
 */

/** Breaker states, as core's `IsolationRouter` names them. */
export type BreakerState = "closed" | "open" | "half-open"

/** Breaker settings. */
export interface BreakerConfig {
  /** Consecutive failures that open the breaker. */
  readonly failureThreshold: number
  /** How long an open breaker refuses everything before letting one trial through. */
  readonly cooldownMs: number
}

/** A permit to call through the breaker; report its outcome exactly once. */
export interface Permit {
  /** The call reached the pool and the pool answered. */
  success(): void
  /** The pool could not be reached or did not answer. */
  failure(): void
  /** The call ended before reaching the pool (say nothing about its health). */
  release(): void
}

/** A breaker: `acquire` returns a permit, or why the call is refused. */
export interface Breaker {
  acquire(): Permit | string
  readonly state: BreakerState
  readonly consecutiveFailures: number
}

/**
 * A breaker on the wall clock. `onChange` hears every transition (including the end of a cooldown, on a timer that
 * does not keep the process alive).
 */
export const makeBreaker = (
  config: BreakerConfig,
  onChange?: (state: BreakerState) => void,
  now: () => number = Date.now
): Breaker => {
  let state: BreakerState = "closed"
  let failures = 0
  let openedAt = 0
  let trialInFlight = false
  let cooldown: NodeJS.Timeout | undefined

  const set = (next: BreakerState) => {
    if (next === state) return
    state = next
    onChange?.(next)
  }

  const current = (): BreakerState => {
    if (state === "open" && now() - openedAt >= config.cooldownMs) {
      trialInFlight = false
      set("half-open")
    }
    return state
  }

  const open = () => {
    openedAt = now()
    trialInFlight = false
    set("open")
    clearTimeout(cooldown)
    cooldown = setTimeout(current, config.cooldownMs)
    cooldown.unref()
  }

  return {
    get state() {
      return current()
    },
    get consecutiveFailures() {
      return failures
    },
    acquire: () => {
      const s = current()
      if (s === "open") return "circuit breaker open"
      if (s === "half-open" && trialInFlight) return "circuit breaker half-open, trial in flight"
      const trial = s === "half-open"
      if (trial) trialInFlight = true
      let settled = false
      const settle = (outcome: "success" | "failure" | "release") => {
        if (settled) return
        settled = true
        if (outcome === "release") {
          if (trial) trialInFlight = false
          return
        }
        if (outcome === "success") {
          failures = 0
          if (trial) {
            trialInFlight = false
            set("closed")
          }
          return
        }
        failures++
        if (trial || (state === "closed" && failures >= config.failureThreshold)) open()
      }
      return {
        success: () => settle("success"),
        failure: () => settle("failure"),
        release: () => settle("release")
      }
    }
  }
}
