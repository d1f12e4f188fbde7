/**
 * The producer side of the distributed tier pools (SPEC §8): an API instance that admitted an execution hands it to
 * the workers of the granted tier through a BullMQ queue, and waits for their answer.
 *
 * One queue per tier (`egl-pool-t0` … `egl-pool-t3`, under a key prefix). {@link TierQueues.submit} enqueues on the
 * queue of `envelope.granted.pool` and on no other: the pool was chosen at admission, where a cross-tier fallback can
 * only happen in incident mode (policy `crossTierFallback`), is recorded, and is part of the sealed envelope. The
 * worker re-verifies the envelope, uses its single-use grant, runs the handler and records the outcome in the ledger
 * before it answers, so a result returned here is already in the ledger.
 *
 * Fail closed: when the queue cannot take the job (Redis down, the enqueue too slow, the pool's breaker open) the
 * answer is core's `IsolationRouter.PoolUnavailable` (`POOL_UNAVAILABLE`) and nothing executes; the grant stays unused
 * and expires. A job also carries the time the producer stops waiting, after which no worker starts it.
 *
 * Per-pool circuit breaker: `failureThreshold` consecutive failures to reach the pool (enqueue failures and results
 * that never came) open it for `cooldownMs`, during which submissions are `PoolUnavailable` at once; then one trial
 * goes through, and closes it on success. A worker's refusal or a failed handler is an answer, so it counts as the
 * pool being reachable. (Core's `IsolationRouter` does not export its breaker, which works on a rolling failure ratio
 * of in-process tasks; this one is local.) Given the admitting `governance` instance, the breakers are mirrored into
 * its `IsolationRouter`, so admission denies `POOL_UNAVAILABLE` for a remote pool that is down, or in incident mode
 * falls back to a higher tier there.
 *
 * @example
 * ```ts
 * const queues = TierQueues.make({ url: process.env.REDIS_URL })
 * await queues.ready()
 * const admitted = await egl.admit(request)
 * if (admitted.ok && admitted.cached === undefined) {
 *   const result = await queues.submit(admitted.envelope, request.input, { timeoutMs: 10_000 })
 *   if (result.ok) reply(201, result.output)
 *   else reply(result.code === "POOL_UNAVAILABLE" ? 503 : 502, result.error.message)
 * }
 * ```
 * @module
 */
import {
  Canonical,
  IsolationRouter,
  Ledger,
  type Envelope,
  type ExecutionClass,
  type GovernanceInstance
} from "@egl/core"
import { Queue, QueueEvents, type Job } from "bullmq"
import { Schema } from "effect"
import type { Redis, RedisOptions } from "ioredis"
import { makeBreaker, type Breaker, type BreakerState } from "./internal/breaker.ts"
import { ConfigInvalid, nonEmptyOrUndefined, positiveOrUndefined } from "./internal/config.ts"
import {
  blockingOptions,
  closeClient,
  describeError,
  failFastClient,
  redisUrl,
  whenReady
} from "./internal/connection.ts"
import { parseFailure, queueName, type JobData, type JobResult } from "./internal/job.ts"
import { throttledWarn, type WarnLogger } from "./internal/log.ts"

export { ConfigInvalid } from "./internal/config.ts"
export { queueName } from "./internal/job.ts"
export type { BreakerState } from "./internal/breaker.ts"
export type { WarnLogger } from "./internal/log.ts"

/** Default BullMQ key prefix of the tier queues. */
export const DEFAULT_PREFIX = "egl"

/** Default time an enqueue may take before the pool counts as unavailable, in milliseconds. */
export const DEFAULT_ENQUEUE_TIMEOUT_MS = 1000

/** Default time to wait for a worker's answer, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 30_000

/** Default producer-side breaker: 5 consecutive failures open it for 30 s. */
export const DEFAULT_BREAKER = { failureThreshold: 5, cooldownMs: 30_000 } as const

/** Options of {@link make}. */
export interface Options {
  /** Redis URL (default `REDIS_URL`, else `redis://127.0.0.1:6379`). */
  readonly url?: string | undefined
  /** Extra ioredis options (TLS, credentials, …). */
  readonly redisOptions?: RedisOptions | undefined
  /** BullMQ key prefix (default {@link DEFAULT_PREFIX}); producers and workers of one deployment share it. */
  readonly prefix?: string | undefined
  /** An enqueue slower than this is `PoolUnavailable` (default {@link DEFAULT_ENQUEUE_TIMEOUT_MS}). */
  readonly enqueueTimeoutMs?: number | undefined
  /** Default wait for a worker's answer (default {@link DEFAULT_TIMEOUT_MS}); `submit` may override it. */
  readonly timeoutMs?: number | undefined
  /** Producer-side breaker of each pool (default {@link DEFAULT_BREAKER}). */
  readonly breaker?: { readonly failureThreshold?: number | undefined; readonly cooldownMs?: number | undefined }
  /** How long finished jobs stay in Redis for inspection, in seconds (default 1 h completed, 24 h failed). */
  readonly retention?: { readonly completedSeconds?: number | undefined; readonly failedSeconds?: number | undefined }
  /** Where connection and pool failures are logged (a pino logger fits); at most one line per 10 s. */
  readonly logger?: WarnLogger | undefined
  /**
   * The governance instance that admits for these queues. When given, each pool's breaker is mirrored into its
   * `IsolationRouter` (an open breaker marks the pool unavailable, the end of the cooldown makes it available for the
   * trial), so admission itself sees a remote pool that is down: it denies `POOL_UNAVAILABLE` (a recorded denial)
   * rather than admitting work no worker can take, or, in incident mode (policy `crossTierFallback`), routes to the next
   * available higher tier, recorded as `CROSS_TIER_FALLBACK`.
   */
  readonly governance?: GovernanceInstance | undefined
}

/** Options of one submission. */
export interface SubmitOptions {
  /** How long to wait for the worker's answer, in milliseconds (default: the queues' `timeoutMs`). */
  readonly timeoutMs?: number | undefined
}

/** A worker refused the envelope and recorded the incident in the ledger; the handler did not run. */
export class DispatchRefused extends Schema.TaggedError<DispatchRefused>()("DispatchRefused", {
  code: Schema.Literals(["ENVELOPE_INVALID", "GRANT_REUSED", "GRANT_EXPIRED", "GRANT_STORE_UNAVAILABLE"]),
  envelopeId: Schema.String,
  pool: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.code}: ${this.detail}`
  }
}

/**
 * The execution failed. `EXECUTION_FAILED`: the handler threw (or the worker has none for the action), and the
 * outcome is recorded as failed. `WORKER_FAILED`: the worker ended the job without an outcome of its own (it died, or
 * took the job after the producer had stopped waiting); the ledger says whether anything was dispatched.
 */
export class ExecutionFailed extends Schema.TaggedError<ExecutionFailed>()("ExecutionFailed", {
  code: Schema.Literals(["EXECUTION_FAILED", "WORKER_FAILED"]),
  envelopeId: Schema.String,
  pool: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.code}: ${this.detail}`
  }
}

/**
 * The job was enqueued but no answer came in time. The worker may still run it (until the job's deadline) and record
 * its outcome; the ledger is where to look.
 */
export class ResultTimeout extends Schema.TaggedError<ResultTimeout>()("ResultTimeout", {
  envelopeId: Schema.String,
  pool: Schema.String,
  jobId: Schema.String,
  timeoutMs: Schema.Number
}) {
  /** Reason code of this error. */
  readonly code = "RESULT_TIMEOUT" as const
  override get message(): string {
    return `no answer from ${this.pool} within ${this.timeoutMs} ms (job ${this.jobId}); the ledger has its outcome`
  }
}

/** The envelope cannot be submitted (not admitted, served from the cache, or the input is not the admitted one). */
export class SubmissionInvalid extends Schema.TaggedError<SubmissionInvalid>()("SubmissionInvalid", {
  envelopeId: Schema.String,
  detail: Schema.String
}) {
  /** Reason code of this error. */
  readonly code = "INVALID_REQUEST" as const
  override get message(): string {
    return this.detail
  }
}

/** Every way a submission can fail. */
export type SubmitError =
  | IsolationRouter.PoolUnavailable
  | DispatchRefused
  | ExecutionFailed
  | ResultTimeout
  | SubmissionInvalid
  | Ledger.LedgerUnavailable

/** Result of {@link TierQueues.submit}. */
export type SubmitResult<A> =
  | {
      readonly ok: true
      /** What the handler returned (through JSON). */
      readonly output: A
      /** Identity of the worker that ran it (`host/pid/pool`). */
      readonly worker: string
      /** Position of the `completed` execution record in the ledger. */
      readonly ledger: { readonly index: number; readonly hash: string }
      readonly jobId: string
    }
  | {
      readonly ok: false
      readonly error: SubmitError
      /** Machine-readable code: `POOL_UNAVAILABLE`, `ENVELOPE_INVALID`, `GRANT_REUSED`, `RESULT_TIMEOUT`, … */
      readonly code: string
    }

/** A snapshot of one pool, as this producer sees it. */
export interface PoolStatus {
  readonly pool: IsolationRouter.PoolName
  readonly tier: ExecutionClass.Tier
  /** BullMQ queue name. */
  readonly queue: string
  readonly breaker: BreakerState
  readonly consecutiveFailures: number
}

/** The producer side of the tier pools. */
export interface TierQueues {
  /**
   * Enqueues an admitted envelope with its input on its granted pool's queue and waits for the worker's answer.
   * Never rejects: every failure is `{ ok: false, error, code }`.
   */
  submit<A = unknown>(
    envelope: Envelope.ExecutionEnvelope,
    input?: unknown,
    options?: SubmitOptions
  ): Promise<SubmitResult<A>>
  /** Resolves true once the connections are ready, false after `timeoutMs` (default 5000) without them. */
  ready(timeoutMs?: number): Promise<boolean>
  /** Every pool, tier 0 first. */
  status(): ReadonlyArray<PoolStatus>
  /** The BullMQ key prefix. */
  readonly prefix: string
  /** Closes the queues and their connections. Idempotent. */
  close(): Promise<void>
}

const TIERS: ReadonlyArray<ExecutionClass.Tier> = [0, 1, 2, 3]
const isPoolName = Schema.is(IsolationRouter.PoolName)
const TIER_OF: Readonly<Record<IsolationRouter.PoolName, ExecutionClass.Tier>> = {
  "pool-t0": 0,
  "pool-t1": 1,
  "pool-t2": 2,
  "pool-t3": 3
}

interface Pool {
  readonly tier: ExecutionClass.Tier
  readonly name: IsolationRouter.PoolName
  readonly queueName: string
  readonly breaker: Breaker
  readonly events: QueueEvents
  /** The event stream's start-up completed (until then BullMQ's own `close` would wait for Redis forever). */
  eventsStarted: boolean
  queue: Queue<JobData, JobResult> | undefined
  /** The queue object's start-up failed (BullMQ does not retry it): replace it once Redis is back. */
  broken: boolean
}

const TIMEOUT: unique symbol = Symbol("timeout")

/** Races a promise against a timer; the timer never keeps the process alive. */
const within = <A>(promise: Promise<A>, ms: number): Promise<A | typeof TIMEOUT> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<typeof TIMEOUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMEOUT), ms)
    timer.unref()
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Makes the producer side of the tier pools. Throws {@link ConfigInvalid} for unusable options. */
export const make = (options: Options = {}): TierQueues => {
  nonEmptyOrUndefined("url", options.url)
  nonEmptyOrUndefined("prefix", options.prefix)
  positiveOrUndefined("enqueueTimeoutMs", options.enqueueTimeoutMs)
  positiveOrUndefined("timeoutMs", options.timeoutMs)
  positiveOrUndefined("breaker.failureThreshold", options.breaker?.failureThreshold)
  positiveOrUndefined("retention.completedSeconds", options.retention?.completedSeconds)
  positiveOrUndefined("retention.failedSeconds", options.retention?.failedSeconds)
  const cooldownMs = options.breaker?.cooldownMs ?? DEFAULT_BREAKER.cooldownMs
  if (!(Number.isFinite(cooldownMs) && cooldownMs >= 0)) {
    throw new ConfigInvalid({ detail: "breaker.cooldownMs must be a finite number ≥ 0" })
  }
  const url = redisUrl(options.url)
  const prefix = options.prefix ?? DEFAULT_PREFIX
  const enqueueTimeoutMs = options.enqueueTimeoutMs ?? DEFAULT_ENQUEUE_TIMEOUT_MS
  const defaultTimeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const breakerConfig = {
    failureThreshold: Math.ceil(options.breaker?.failureThreshold ?? DEFAULT_BREAKER.failureThreshold),
    cooldownMs
  }
  const jobOptions = {
    // A job runs at most once: a retry would present a used grant, which the worker refuses anyway.
    attempts: 1,
    // Completed jobs stay a while, so a producer that checks a finished job still finds its result.
    removeOnComplete: { age: options.retention?.completedSeconds ?? 3600, count: 100_000 },
    removeOnFail: { age: options.retention?.failedSeconds ?? 86_400, count: 100_000 }
  }
  const warn = throttledWarn(options.logger, 10_000)
  const onError = (source: string) => (e: unknown) =>
    warn({ component: "egl-redis-queues", source, prefix, error: describeError(e) }, "tier queue connection failed")

  // One fail-fast client for every enqueue (BullMQ shares it between the four queues and leaves it open).
  const producer: Redis = failFastClient(url, enqueueTimeoutMs, options.redisOptions, "egl-producer")
  producer.on("error", onError("producer"))

  const governance = options.governance
  const mirror = (pool: IsolationRouter.PoolName) => (state: BreakerState) => {
    if (governance === undefined) return
    const available = state !== "open"
    void governance.runtime
      .runPromise(IsolationRouter.IsolationRouter.use((r) => r.setAvailable(pool, available)))
      .catch(() => {})
  }

  const pools: ReadonlyArray<Pool> = TIERS.map((tier) => {
    const name = queueName(tier)
    const events = new QueueEvents(name, { connection: blockingOptions(url, options.redisOptions), prefix })
    events.on("error", onError(`events:${name}`))
    const pool: Pool = {
      tier,
      name: IsolationRouter.poolName(tier),
      queueName: name,
      breaker: makeBreaker(breakerConfig, mirror(IsolationRouter.poolName(tier))),
      events,
      eventsStarted: false,
      queue: undefined,
      broken: false
    }
    events.waitUntilReady().then(
      () => {
        pool.eventsStarted = true
      },
      () => {}
    )
    return pool
  })

  /** Closes a pool's event stream without waiting for a Redis that may never come. */
  const closeEvents = async (pool: Pool) => {
    if (pool.eventsStarted && (await within(pool.events.close(), 2000)) !== TIMEOUT) return
    await pool.events.getBackend().close(true)
  }

  const queueOf = (pool: Pool): Queue<JobData, JobResult> => {
    if (pool.queue !== undefined && !pool.broken) return pool.queue
    const stale = pool.queue
    if (stale !== undefined) void stale.close().catch(() => {})
    const queue = new Queue<JobData, JobResult>(pool.queueName, { connection: producer, prefix })
    queue.on("error", onError(`queue:${pool.queueName}`))
    pool.broken = false
    pool.queue = queue
    queue.waitUntilReady().catch(() => {
      if (pool.queue === queue) pool.broken = true
    })
    return queue
  }

  /** Waits (boundedly) for the producer connection while it is connecting; fails at once while it is down. */
  const connected = async (): Promise<string | undefined> => {
    const status = producer.status
    if (status === "ready") return undefined
    if (status !== "connecting" && status !== "connect" && status !== "wait") return `redis connection ${status}`
    return (await whenReady(producer, enqueueTimeoutMs, true)) ? undefined : "redis connection failed"
  }

  let closed = false

  const submit = async <A>(
    envelope: Envelope.ExecutionEnvelope,
    input?: unknown,
    submitOptions?: SubmitOptions
  ): Promise<SubmitResult<A>> => {
    const envelopeId = typeof envelope?.id === "string" ? envelope.id : "unknown"
    const invalid = (detail: string): SubmitResult<A> => ({
      ok: false,
      error: new SubmissionInvalid({ envelopeId, detail }),
      code: "INVALID_REQUEST"
    })
    const granted = envelope?.granted
    if (envelope?.decision?.outcome !== "admitted" || granted === undefined) {
      return invalid("the envelope was not admitted")
    }
    if (!isPoolName(granted.pool)) {
      return invalid(
        `the envelope is granted "${String(granted.pool)}", not a tier pool (a cache hit is served by the API itself)`
      )
    }
    const timeoutMs = submitOptions?.timeoutMs ?? defaultTimeoutMs
    if (!(typeof timeoutMs === "number" && Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      return invalid("timeoutMs must be a positive number")
    }
    const value = input === undefined ? null : input
    const canonical = Canonical.toCanonicalJsonOrError(value)
    if (typeof canonical !== "string") return invalid(`the input has no canonical form: ${canonical.message}`)
    // The worker checks this too (it trusts nothing it dequeues); checking here keeps a caller's mistake from reaching
    // a worker, where it would be recorded as a forged submission.
    if (Canonical.digestText(canonical) !== envelope.execution?.inputDigest) {
      return invalid("the input is not the one admitted (its digest differs from the envelope's input digest)")
    }

    const pool = pools[TIER_OF[granted.pool]]!
    const unavailable = (detail: string): SubmitResult<A> => ({
      ok: false,
      error: new IsolationRouter.PoolUnavailable({ tier: pool.tier, pool: pool.name, detail }),
      code: "POOL_UNAVAILABLE"
    })
    if (closed) return unavailable("the tier queues are closed")
    const permit = pool.breaker.acquire()
    if (typeof permit === "string") return unavailable(permit)

    const notConnected = await connected()
    if (notConnected !== undefined) {
      permit.failure()
      warn({ component: "egl-redis-queues", pool: pool.name, error: notConnected }, "tier queue unavailable")
      return unavailable(notConnected)
    }

    const startedAt = Date.now()
    const data: JobData = { v: 1, envelope, input: value, deadline: startedAt + timeoutMs }
    let job: Job<JobData, JobResult>
    try {
      const added = await within(
        queueOf(pool).add(`${envelope.execution.tool}.${envelope.execution.action}`, data, jobOptions),
        enqueueTimeoutMs
      )
      if (added === TIMEOUT) throw new Error(`enqueue not acknowledged within ${enqueueTimeoutMs} ms`)
      job = added
    } catch (e) {
      permit.failure()
      const detail = `enqueue on ${pool.queueName} failed: ${describeError(e)}`
      warn({ component: "egl-redis-queues", pool: pool.name, error: detail }, "tier queue unavailable")
      return unavailable(detail)
    }

    const jobId = String(job.id)
    const remaining = Math.max(1, startedAt + timeoutMs - Date.now())
    let answer: JobResult | typeof TIMEOUT
    try {
      answer = await within(job.waitUntilFinished(pool.events, remaining + 1000), remaining)
    } catch (e) {
      const reason = describeError(e)
      if (/timed out before finishing/.test(reason)) answer = TIMEOUT
      else {
        permit.success()
        return failed(reason, envelopeId, pool.name)
      }
    }
    if (answer === TIMEOUT) {
      permit.failure()
      return {
        ok: false,
        error: new ResultTimeout({ envelopeId, pool: pool.name, jobId, timeoutMs }),
        code: "RESULT_TIMEOUT"
      }
    }
    permit.success()
    if (
      typeof answer !== "object" ||
      answer === null ||
      typeof answer.worker !== "string" ||
      typeof answer.ledger?.index !== "number" ||
      typeof answer.ledger.hash !== "string"
    ) {
      return {
        ok: false,
        error: new ExecutionFailed({
          code: "WORKER_FAILED",
          envelopeId,
          pool: pool.name,
          detail: "the worker answered without an execution record"
        }),
        code: "WORKER_FAILED"
      }
    }
    return {
      ok: true,
      output: answer.output as A,
      worker: answer.worker,
      ledger: { index: answer.ledger.index, hash: answer.ledger.hash },
      jobId
    }
  }

  const ready = async (timeoutMs = 5000): Promise<boolean> => {
    const all = Promise.all([
      whenReady(producer, timeoutMs).then((ok) => (ok ? undefined : Promise.reject(new Error("not ready")))),
      ...pools.map((p) => p.events.waitUntilReady()),
      ...pools.map((p) => queueOf(p).waitUntilReady())
    ]).then(
      () => true,
      () => false
    )
    const outcome = await within(all, timeoutMs)
    return outcome === true
  }

  return {
    prefix,
    submit,
    ready,
    status: () =>
      pools.map((p) => ({
        pool: p.name,
        tier: p.tier,
        queue: p.queueName,
        breaker: p.breaker.state,
        consecutiveFailures: p.breaker.consecutiveFailures
      })),
    close: async () => {
      if (closed) return
      closed = true
      await Promise.allSettled(
        pools.flatMap((p) => [closeEvents(p), ...(p.queue !== undefined ? [p.queue.close()] : [])])
      )
      await closeClient(producer)
    }
  }
}

/** Types a failed job's reason, as the worker wrote it. */
const failed = <A>(reason: string, envelopeId: string, pool: string): SubmitResult<A> => {
  const { code, detail } = parseFailure(reason)
  switch (code) {
    case "ENVELOPE_INVALID":
    case "GRANT_REUSED":
    case "GRANT_EXPIRED":
    case "GRANT_STORE_UNAVAILABLE":
      return { ok: false, error: new DispatchRefused({ code, envelopeId, pool, detail }), code }
    case "LEDGER_UNAVAILABLE":
      return { ok: false, error: new Ledger.LedgerUnavailable({ detail }), code }
    case "EXECUTION_FAILED":
      return { ok: false, error: new ExecutionFailed({ code, envelopeId, pool, detail }), code }
    default:
      return {
        ok: false,
        error: new ExecutionFailed({ code: "WORKER_FAILED", envelopeId, pool, detail: reason }),
        code: "WORKER_FAILED"
      }
  }
}
