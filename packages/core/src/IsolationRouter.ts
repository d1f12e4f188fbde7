/**
 * Isolation and dispatch (SPEC §8): one pool per tier, so a flood or a failure at one tier cannot starve or poison
 * another.
 *
 * Each tier has its own in-process pool (`pool-t0` … `pool-t3`) with bounded concurrency (an Effect `Semaphore`), a
 * bounded wait queue and a circuit breaker over a rolling window of outcomes. Tier 3 (privileged) is serialized: its
 * concurrency is always 1, whatever the configuration says.
 *
 * {@link IsolationRouter.select} picks the pool for an admitted tier. An unavailable pool (breaker open, closed for
 * maintenance, queue full) is a {@link PoolUnavailable} denial, unless the policy sets `crossTierFallback` (incident
 * mode): then the next available HIGHER tier pool serves, and the selection says `fallback: true` so the caller records
 * the incident. A lower tier never serves: it would run the execution with less isolation than it was granted.
 *
 * Breaker: closed until, with at least `minSamples` outcomes in the last `windowSize`, the failure ratio reaches
 * `failureRatio`; then open (everything rejected) for `cooldownMs`; then half-open, letting exactly one trial through,
 * whose success closes the breaker and whose failure opens it again. Time comes from Effect's `Clock`.
 * @module
 */
import { Cause, Clock, Context, Effect, Exit, Layer, Schema, Semaphore } from "effect"
import { Tier } from "./ExecutionClass.ts"

/** Names of the per-tier pools. */
export const PoolName = Schema.Literals(["pool-t0", "pool-t1", "pool-t2", "pool-t3"])
/** @see PoolName */
export type PoolName = typeof PoolName.Type

const POOL_NAMES: ReadonlyArray<PoolName> = ["pool-t0", "pool-t1", "pool-t2", "pool-t3"]
const TIERS: ReadonlyArray<Tier> = [0, 1, 2, 3]

/** The pool that serves a tier. */
export const poolName = (tier: Tier): PoolName => POOL_NAMES[tier]!

/** Circuit breaker settings. */
export interface BreakerConfig {
  /** Number of most recent outcomes the failure ratio is computed over. */
  readonly windowSize: number
  /** Failure ratio (0 < r ≤ 1) at or above which the breaker opens. */
  readonly failureRatio: number
  /** Outcomes needed in the window before the breaker may open. */
  readonly minSamples: number
  /** How long an open breaker rejects everything before letting one trial through. */
  readonly cooldownMs: number
}

/** Settings of one pool. */
export interface PoolConfig {
  /** Tasks running at once (always 1 for tier 3). */
  readonly concurrency: number
  /** Tasks allowed to wait for a slot; beyond that the pool is unavailable. */
  readonly queueLimit: number
  readonly breaker: BreakerConfig
}

/** Default breaker: opens at 50 % failures over the last 20 outcomes (at least 10), retries after 30 s. */
export const defaultBreaker: BreakerConfig = { windowSize: 20, failureRatio: 0.5, minSamples: 10, cooldownMs: 30_000 }

/** Default pool settings per tier: wide for pure work, narrower as the blast radius grows, serialized at tier 3. */
export const defaultPoolConfigs: Readonly<Record<Tier, PoolConfig>> = {
  0: { concurrency: 64, queueLimit: 1024, breaker: defaultBreaker },
  1: { concurrency: 16, queueLimit: 256, breaker: defaultBreaker },
  2: { concurrency: 16, queueLimit: 256, breaker: defaultBreaker },
  3: { concurrency: 1, queueLimit: 32, breaker: defaultBreaker }
}

/** Overrides of the default pool settings, per tier. */
export type RouterConfig = {
  readonly [T in Tier]?: {
    readonly concurrency?: number | undefined
    readonly queueLimit?: number | undefined
    readonly breaker?: Partial<BreakerConfig> | undefined
  }
}

/** Pool settings are invalid (raised when the layer is built, never per request). */
export class PoolConfigError extends Schema.TaggedError<PoolConfigError>()("PoolConfigError", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** No pool may serve the tier: denial `POOL_UNAVAILABLE`. */
export class PoolUnavailable extends Schema.TaggedError<PoolUnavailable>()("PoolUnavailable", {
  /** The tier that asked. */
  tier: Tier,
  /** The pool that refused (the tier's own pool when selection found none). */
  pool: PoolName,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.pool} unavailable for tier ${this.tier}: ${this.detail}`
  }
}

/** The pool chosen for an execution. */
export interface Selection {
  readonly pool: PoolName
  /** Tier of the pool (higher than the asked tier on a fallback). */
  readonly tier: Tier
  /** True when a higher tier's pool serves (incident mode): record the incident (`CROSS_TIER_FALLBACK`). */
  readonly fallback: boolean
}

/** Circuit breaker states. */
export type BreakerState = "closed" | "open" | "half-open"

/** A snapshot of one pool. */
export interface PoolStatus {
  readonly pool: PoolName
  readonly tier: Tier
  readonly concurrency: number
  readonly queueLimit: number
  /** False while closed for maintenance or draining (see {@link IsolationRouter.setAvailable}). */
  readonly available: boolean
  readonly inFlight: number
  /** Tasks waiting for a slot. */
  readonly queued: number
  readonly breaker: BreakerState
  /** Outcomes and failures in the breaker's current window. */
  readonly samples: number
  readonly failures: number
}

/** The isolation router service. */
export class IsolationRouter extends Context.Service<
  IsolationRouter,
  {
    /**
     * The pool for a tier: its own, or with `crossTierFallback` the next available higher one (`fallback: true`).
     * Never a lower one. Synchronous inside.
     */
    select(tier: Tier, options: { readonly crossTierFallback: boolean }): Effect.Effect<Selection, PoolUnavailable>
    /**
     * Runs a task in a pool: waits for a slot (bounded concurrency), rejects with {@link PoolUnavailable} when the
     * pool is closed, its queue full or its breaker open, and feeds the outcome (failure or defect; not interruption)
     * to the breaker.
     *
     * @example
     * ```ts
     * const router = yield* IsolationRouter
     * const { pool } = yield* router.select(granted.tier, { crossTierFallback: false })
     * const result = yield* router.run(pool, execute(envelope))
     * ```
     */
    run<A, E, R>(pool: PoolName, task: Effect.Effect<A, E, R>): Effect.Effect<A, E | PoolUnavailable, R>
    /** A snapshot of every pool, tier 0 first. */
    readonly status: Effect.Effect<ReadonlyArray<PoolStatus>>
    /** Opens or closes a pool for new work (maintenance, draining, tests); running and queued tasks finish. */
    setAvailable(pool: PoolName, available: boolean): Effect.Effect<void>
  }
>()("@egl/core/IsolationRouter") {
  /** A router with the default pool settings overridden by `config`; invalid settings fail the layer. */
  static readonly layer = (config?: RouterConfig): Layer.Layer<IsolationRouter, PoolConfigError> =>
    Layer.effect(
      IsolationRouter,
      Effect.suspend(() => make(config ?? {}))
    )

  /** A router with {@link defaultPoolConfigs}. */
  static readonly layerDefault: Layer.Layer<IsolationRouter> = Layer.effect(
    IsolationRouter,
    Effect.orDie(Effect.suspend(() => make({})))
  )
}

/** Resolves and validates the settings of every pool. */
export const resolvePoolConfigs = (config: RouterConfig): Readonly<Record<Tier, PoolConfig>> | PoolConfigError => {
  const out = {} as Record<Tier, PoolConfig>
  for (const tier of TIERS) {
    const base = defaultPoolConfigs[tier]
    const o = config[tier]
    const resolved: PoolConfig = {
      concurrency: tier === 3 ? 1 : (o?.concurrency ?? base.concurrency),
      queueLimit: o?.queueLimit ?? base.queueLimit,
      breaker: { ...base.breaker, ...stripUndefined(o?.breaker) }
    }
    const b = resolved.breaker
    const problem = !isInt(resolved.concurrency, 1)
      ? "concurrency must be an integer ≥ 1"
      : !isInt(resolved.queueLimit, 0)
        ? "queueLimit must be an integer ≥ 0"
        : !isInt(b.windowSize, 1)
          ? "breaker.windowSize must be an integer ≥ 1"
          : !isInt(b.minSamples, 1) || b.minSamples > b.windowSize
            ? "breaker.minSamples must be an integer between 1 and windowSize"
            : !(b.failureRatio > 0 && b.failureRatio <= 1)
              ? "breaker.failureRatio must be in (0, 1]"
              : !(Number.isFinite(b.cooldownMs) && b.cooldownMs >= 0)
                ? "breaker.cooldownMs must be a finite number ≥ 0"
                : undefined
    if (problem !== undefined) return new PoolConfigError({ detail: `${poolName(tier)}: ${problem}` })
    out[tier] = resolved
  }
  return out
}

const isInt = (n: number, min: number): boolean => Number.isSafeInteger(n) && n >= min

const stripUndefined = <T extends object>(o: T | undefined): Partial<T> => {
  const out: Partial<T> = {}
  if (o !== undefined)
    for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v
  return out
}

interface Pool {
  readonly name: PoolName
  readonly tier: Tier
  readonly config: PoolConfig
  readonly semaphore: Semaphore.Semaphore
  /** concurrency + queueLimit: the most tasks the pool holds at once. */
  readonly capacity: number
  available: boolean
  inFlight: number
  queued: number
  state: BreakerState
  /** 1 = failure, 0 = success, ring buffer of the last `windowSize` outcomes. */
  readonly window: Uint8Array
  next: number
  samples: number
  failures: number
  openedAt: number
  trialInFlight: boolean
  /** Prebuilt selections: [own tier, fallback]. */
  readonly selections: readonly [Selection, Selection]
}

const make = (config: RouterConfig): Effect.Effect<IsolationRouter["Service"], PoolConfigError> => {
  const configs = resolvePoolConfigs(config)
  if (configs instanceof PoolConfigError) return Effect.fail(configs)
  const pools: ReadonlyArray<Pool> = TIERS.map((tier) => {
    const c = configs[tier]
    const name = poolName(tier)
    return {
      name,
      tier,
      config: c,
      semaphore: Semaphore.makeUnsafe(c.concurrency),
      capacity: c.concurrency + c.queueLimit,
      available: true,
      inFlight: 0,
      queued: 0,
      state: "closed",
      window: new Uint8Array(c.breaker.windowSize),
      next: 0,
      samples: 0,
      failures: 0,
      openedAt: 0,
      trialInFlight: false,
      selections: [
        Object.freeze({ pool: name, tier, fallback: false }),
        Object.freeze({ pool: name, tier, fallback: true })
      ]
    }
  })

  /** The breaker state at `now`: an open breaker whose cooldown has elapsed becomes half-open. */
  const breakerAt = (pool: Pool, now: number): BreakerState => {
    if (pool.state === "open" && now - pool.openedAt >= pool.config.breaker.cooldownMs) {
      pool.state = "half-open"
      pool.trialInFlight = false
    }
    return pool.state
  }

  /** Why a pool cannot take a task now, or undefined when it can. */
  const refusal = (pool: Pool, now: number): string | undefined => {
    if (!pool.available) return "closed for maintenance"
    const state = breakerAt(pool, now)
    if (state === "open") return "circuit breaker open"
    if (state === "half-open" && pool.trialInFlight) return "circuit breaker half-open, trial in flight"
    if (pool.inFlight + pool.queued >= pool.capacity) return "queue full"
    return undefined
  }

  const resetWindow = (pool: Pool) => {
    pool.window.fill(0)
    pool.next = 0
    pool.samples = 0
    pool.failures = 0
  }

  const open = (pool: Pool, now: number) => {
    pool.state = "open"
    pool.openedAt = now
    pool.trialInFlight = false
    resetWindow(pool)
  }

  const record = (pool: Pool, failed: boolean, trial: boolean, now: number) => {
    if (trial) {
      if (failed) open(pool, now)
      else {
        pool.state = "closed"
        pool.trialInFlight = false
        resetWindow(pool)
      }
      return
    }
    // Outcomes of tasks admitted before the breaker opened say nothing about the pool after it.
    if (pool.state !== "closed") return
    const b = pool.config.breaker
    if (pool.samples === b.windowSize) pool.failures -= pool.window[pool.next]!
    else pool.samples++
    pool.window[pool.next] = failed ? 1 : 0
    if (failed) pool.failures++
    pool.next = (pool.next + 1) % b.windowSize
    if (pool.samples >= b.minSamples && pool.failures / pool.samples >= b.failureRatio) open(pool, now)
  }

  const select = (
    tier: Tier,
    options: { readonly crossTierFallback: boolean }
  ): Effect.Effect<Selection, PoolUnavailable> =>
    Clock.clockWith((clock) => {
      const now = clock.currentTimeMillisUnsafe()
      const own = pools[tier]!
      const why = refusal(own, now)
      if (why === undefined) return Effect.succeed(own.selections[0])
      if (!options.crossTierFallback) return Effect.fail(new PoolUnavailable({ tier, pool: own.name, detail: why }))
      let detail = `${own.name}: ${why}`
      for (let t = tier + 1; t < pools.length; t++) {
        const p = pools[t]!
        const w = refusal(p, now)
        if (w === undefined) return Effect.succeed(p.selections[1])
        detail += `; ${p.name}: ${w}`
      }
      return Effect.fail(
        new PoolUnavailable({ tier, pool: own.name, detail: `no pool at tier ${tier} or above: ${detail}` })
      )
    })

  const run = <A, E, R>(name: PoolName, task: Effect.Effect<A, E, R>): Effect.Effect<A, E | PoolUnavailable, R> =>
    Clock.clockWith((clock): Effect.Effect<A, E | PoolUnavailable, R> => {
      const pool = pools[POOL_NAMES.indexOf(name)]
      if (pool === undefined) {
        return Effect.fail(new PoolUnavailable({ tier: 0, pool: "pool-t0", detail: `unknown pool ${String(name)}` }))
      }
      const why = refusal(pool, clock.currentTimeMillisUnsafe())
      if (why !== undefined) return Effect.fail(new PoolUnavailable({ tier: pool.tier, pool: pool.name, detail: why }))
      const trial = pool.state === "half-open"
      if (trial) pool.trialInFlight = true
      pool.queued++
      let started = false
      const guarded = pool.semaphore.withPermit(
        Effect.suspend(() => {
          pool.queued--
          pool.inFlight++
          started = true
          return task
        })
      )
      return Effect.onExit(guarded, (exit) =>
        Clock.clockWith((c) =>
          Effect.sync(() => {
            if (!started) {
              // Interrupted while waiting for a slot.
              pool.queued--
              if (trial) pool.trialInFlight = false
              return
            }
            pool.inFlight--
            if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) {
              if (trial) pool.trialInFlight = false
              return
            }
            record(pool, Exit.isFailure(exit), trial, c.currentTimeMillisUnsafe())
          })
        )
      )
    })

  const status: Effect.Effect<ReadonlyArray<PoolStatus>> = Clock.clockWith((clock) =>
    Effect.sync(() => {
      const now = clock.currentTimeMillisUnsafe()
      return pools.map((p) => ({
        pool: p.name,
        tier: p.tier,
        concurrency: p.config.concurrency,
        queueLimit: p.config.queueLimit,
        available: p.available,
        inFlight: p.inFlight,
        queued: p.queued,
        breaker: breakerAt(p, now),
        samples: p.samples,
        failures: p.failures
      }))
    })
  )

  const setAvailable = (name: PoolName, available: boolean): Effect.Effect<void> =>
    Effect.sync(() => {
      const pool = pools[POOL_NAMES.indexOf(name)]
      if (pool !== undefined) pool.available = available
    })

  return Effect.succeed(IsolationRouter.of({ select, run, status, setAvailable }))
}
