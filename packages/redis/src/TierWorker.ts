/**
 * The worker side of the distributed tier pools (SPEC §8): a process that serves ONE tier, takes jobs from that tier's
 * BullMQ queue only, and trusts nothing it dequeues.
 *
 * For every job, before anything runs:
 * 1. the envelope is decoded with core's `Envelope.ExecutionEnvelope` Schema (an extra key is an alteration too), and
 *    the job's input must have the envelope's input digest (the input is what was admitted);
 * 2. `governance.dispatch(envelope, { pool, worker })` re-verifies the seal (the content address: any change is
 *    detected), that the envelope was admitted and is in the ledger (so it is covered by the ledger's signed
 *    checkpoints), that it was granted this worker's pool (a tier-2 envelope on the tier-3 queue is refused), that the
 *    grant has not expired and has not been used, and uses it. Every refusal is recorded in the ledger as an incident
 *    (`ENVELOPE_INVALID`, `GRANT_EXPIRED`, `GRANT_REUSED`) and fails the job with that code, which the producer
 *    surfaces as a typed `DispatchRefused`.
 *
 * Then the handler registered for `tool.action` runs, and `governance.complete` records the outcome (output digest,
 * worker identity `host/pid/pool`) BEFORE the job is acknowledged: a result the API returns is already in the ledger. A
 * handler that throws is recorded as failed and fails the job (`EXECUTION_FAILED`). Jobs are never retried (a retry
 * would present a used grant) and a job whose worker died is failed, not handed to another worker.
 *
 * Tier 3 is serialized: its worker's concurrency is 1 whatever is asked, and the tier-3 queue gets a BullMQ global
 * concurrency of 1, so a fleet of tier-3 workers still runs one job at a time.
 *
 * The governance instance of a worker process must share the ledger of the API instances that admit (SQLite on a shared
 * volume, PostgreSQL), and, with more than one process dispatching, a shared grant store (`RedisGrantStore`), so that a
 * grant used on one machine is used everywhere.
 *
 * @example
 * ```ts
 * const egl = await createGovernance({ registry, policy, ledger, grants: RedisGrantStore.make(), runtime: false })
 * const worker = await TierWorker.start({
 *   governance: egl,
 *   tier: 2,
 *   handlers: { "serving.deploy_model": async (input, { envelope }) => deploy(input, envelope.granted!.resources) }
 * })
 * process.on("SIGTERM", () => worker.close().then(() => egl.close()))
 * ```
 * @module
 */
import { hostname } from "node:os"
import { Canonical, Envelope, IsolationRouter, Ledger, type ExecutionClass, type GovernanceInstance } from "@egl/core"
import { Queue, UnrecoverableError, Worker, type Job } from "bullmq"
import { Exit, Schema } from "effect"
import type { RedisOptions } from "ioredis"
import { ConfigInvalid, nonEmptyOrUndefined } from "./internal/config.ts"
import { blockingOptions, describeError, redisUrl } from "./internal/connection.ts"
import { failureReason, queueName, type FailureCode, type JobData, type JobResult } from "./internal/job.ts"
import { throttledWarn, type WarnLogger } from "./internal/log.ts"
import { DEFAULT_PREFIX } from "./TierQueues.ts"

export { ConfigInvalid } from "./internal/config.ts"
export type { WarnLogger } from "./internal/log.ts"

/** What a handler receives besides the input. */
export interface HandlerContext {
  /** The verified envelope: `granted` holds the tier, capabilities and resources the execution may use. */
  readonly envelope: Envelope.ExecutionEnvelope
  /** This worker's identity, as recorded in the ledger. */
  readonly worker: string
  readonly jobId: string
}

/** Runs one action. Its return value is the output: recorded by digest and returned to the producer through JSON. */
export type Handler = (input: unknown, context: HandlerContext) => unknown

/** Options of {@link start}. */
export interface StartOptions {
  /** The worker's governance instance (sharing the API's ledger), which verifies and records. */
  readonly governance: GovernanceInstance
  /** The tier this worker serves; it subscribes to this tier's queue and no other. */
  readonly tier: ExecutionClass.Tier
  /** Handlers by qualified action (`tool.action`). */
  readonly handlers: Readonly<Record<string, Handler>>
  /** Redis URL (default `REDIS_URL`, else `redis://127.0.0.1:6379`). */
  readonly url?: string | undefined
  /** Extra ioredis options (TLS, credentials, …). */
  readonly redisOptions?: RedisOptions | undefined
  /** BullMQ key prefix, the producers' (default `egl`). */
  readonly prefix?: string | undefined
  /** Jobs run at once by this process (default: core's pool default for the tier). Always 1 at tier 3. */
  readonly concurrency?: number | undefined
  /** Identity recorded in the ledger (default `host/pid/pool-tN`). */
  readonly worker?: string | undefined
  /** Where refusals and connection failures are logged (a pino logger fits); at most one line per 10 s. */
  readonly logger?: WarnLogger | undefined
}

/** Counters of a worker since it started. */
export interface WorkerStats {
  readonly completed: number
  /** Handler failures (recorded as failed executions). */
  readonly failed: number
  /** Jobs refused before running (recorded as incidents), by code. */
  readonly refused: Readonly<Record<string, number>>
}

/** A running tier worker. */
export interface TierWorker {
  readonly tier: ExecutionClass.Tier
  readonly pool: IsolationRouter.PoolName
  /** BullMQ queue name it consumes. */
  readonly queue: string
  /** Identity recorded in the ledger. */
  readonly worker: string
  /** Jobs run at once by this process. */
  readonly concurrency: number
  readonly stats: WorkerStats
  /** Stops taking jobs, lets running ones finish, and closes the connections. Idempotent. */
  close(): Promise<void>
}

const decodeEnvelope = Schema.decodeUnknownExit(Envelope.ExecutionEnvelope, { onExcessProperty: "error" })
const isTier = Schema.is(Schema.Literals([0, 1, 2, 3]))

/** A job's failure that must not be retried, with the code the producer types it by. */
const refuse = (code: FailureCode, detail: string): UnrecoverableError =>
  new UnrecoverableError(failureReason(code, detail))

/**
 * Starts a worker of one tier; resolves once it is connected and taking jobs. Throws {@link ConfigInvalid} for
 * unusable options.
 */
export const start = async (options: StartOptions): Promise<TierWorker> => {
  const { governance, tier, handlers } = options
  if (typeof governance?.dispatch !== "function" || typeof governance.complete !== "function") {
    throw new ConfigInvalid({ detail: "governance must be an instance from createGovernance" })
  }
  if (!isTier(tier)) throw new ConfigInvalid({ detail: "tier must be 0, 1, 2 or 3" })
  if (typeof handlers !== "object" || handlers === null) {
    throw new ConfigInvalid({ detail: "handlers must map tool.action to a function" })
  }
  for (const [action, handler] of Object.entries(handlers)) {
    if (typeof handler !== "function") throw new ConfigInvalid({ detail: `handler of "${action}" is not a function` })
  }
  if (options.concurrency !== undefined && !(Number.isSafeInteger(options.concurrency) && options.concurrency >= 1)) {
    throw new ConfigInvalid({ detail: "concurrency must be an integer ≥ 1" })
  }
  nonEmptyOrUndefined("url", options.url)
  nonEmptyOrUndefined("prefix", options.prefix)
  nonEmptyOrUndefined("worker", options.worker)

  const pool = IsolationRouter.poolName(tier)
  const name = queueName(tier)
  const prefix = options.prefix ?? DEFAULT_PREFIX
  const connection = blockingOptions(redisUrl(options.url), options.redisOptions)
  const concurrency = tier === 3 ? 1 : (options.concurrency ?? IsolationRouter.defaultPoolConfigs[tier].concurrency)
  const identity = options.worker ?? `${hostname()}/${process.pid}/${pool}`
  const warn = throttledWarn(options.logger, 10_000)
  let completed = 0
  let failed = 0
  const refused: Record<string, number> = {}

  /** Records an incident the governance pipeline cannot see (a job that carries no envelope, or the wrong input). */
  const incident = async (envelopeId: string, detail: string) => {
    const at = new Date().toISOString()
    const body = Canonical.toCanonicalJsonOrError({
      type: "ENVELOPE_INVALID",
      envelopeId,
      at,
      detail,
      worker: identity
    })
    if (typeof body !== "string") return
    const exit = await governance.runtime.runPromiseExit(
      Ledger.Ledger.use((l) => l.append(Ledger.draft("incident", at, envelopeId, body)))
    )
    if (Exit.isFailure(exit)) {
      warn({ component: "egl-redis-worker", pool, envelopeId }, "could not record an incident in the ledger")
    }
  }

  const refusal = (code: FailureCode, detail: string, envelopeId: string): UnrecoverableError => {
    refused[code] = (refused[code] ?? 0) + 1
    warn({ component: "egl-redis-worker", pool, worker: identity, envelopeId, code, detail }, "job refused")
    return refuse(code, detail)
  }

  const process_ = async (job: Job<JobData, JobResult>): Promise<JobResult> => {
    const data: Partial<JobData> = typeof job.data === "object" && job.data !== null ? job.data : {}
    const raw = data.envelope
    const rawId =
      typeof raw === "object" && raw !== null && typeof (raw as { id?: unknown }).id === "string"
        ? (raw as { id: string }).id.slice(0, 256)
        : "unknown"
    const decoded = decodeEnvelope(raw)
    if (Exit.isFailure(decoded)) {
      const detail = `the job does not carry a well-formed envelope: ${decoded.cause.toString().slice(0, 500)}`
      await incident(rawId, detail)
      throw refusal("ENVELOPE_INVALID", detail, rawId)
    }
    const envelope = decoded.value
    if (typeof data.deadline !== "number" || Date.now() > data.deadline) {
      // The producer has stopped waiting (or never said until when): running now would answer no one. The grant stays
      // unused and expires.
      throw refusal("SUBMISSION_EXPIRED", "the producer stopped waiting before a worker took the job", envelope.id)
    }
    const input = data.input === undefined ? null : data.input
    const canonical = Canonical.toCanonicalJsonOrError(input)
    if (typeof canonical !== "string" || Canonical.digestText(canonical) !== envelope.execution.inputDigest) {
      const detail = "the job's input is not the admitted input (its digest differs from the envelope's input digest)"
      await incident(envelope.id, detail)
      throw refusal("ENVELOPE_INVALID", detail, envelope.id)
    }

    const dispatched = await governance.dispatch(envelope, { pool, worker: identity })
    if (!dispatched.ok) {
      const e = dispatched.error
      const code: FailureCode =
        e._tag === "EnvelopeRejected"
          ? "ENVELOPE_INVALID"
          : e._tag === "GrantRejected"
            ? e.code
            : e._tag === "GrantStoreUnavailable"
              ? "GRANT_STORE_UNAVAILABLE"
              : "LEDGER_UNAVAILABLE"
      throw refusal(code, e.message, envelope.id)
    }

    const qualified = `${envelope.execution.tool}.${envelope.execution.action}`
    const handler = Object.hasOwn(handlers, qualified) ? handlers[qualified] : undefined
    const startedAt = performance.now()
    let failure: string | undefined
    let output: unknown
    if (handler === undefined) failure = `this worker has no handler for ${qualified}`
    else {
      try {
        output = await handler(input, { envelope, worker: identity, jobId: String(job.id) })
      } catch (e) {
        failure = describeError(e)
      }
    }
    const durationMs = Math.round((performance.now() - startedAt) * 1000) / 1000

    if (failure === undefined) {
      const done = await governance.complete(envelope, { status: "completed", output, durationMs, worker: identity })
      if (done.ok) {
        completed++
        return { output, worker: identity, ledger: { index: done.record.index, hash: done.record.hash } }
      }
      if (done.error._tag !== "CanonicalizationError") {
        throw refusal("LEDGER_UNAVAILABLE", done.error.message, envelope.id)
      }
      failure = `the handler's output has no canonical form: ${done.error.message}`
    }
    const recorded = await governance.complete(envelope, {
      status: "failed",
      error: failure,
      durationMs,
      worker: identity
    })
    if (!recorded.ok) throw refusal("LEDGER_UNAVAILABLE", recorded.error.message, envelope.id)
    failed++
    throw refuse("EXECUTION_FAILED", failure)
  }

  if (tier === 3) {
    // A fleet of tier-3 workers still runs one job at a time: the limit lives in Redis, beside the queue.
    const queue = new Queue(name, { connection, prefix })
    queue.on("error", () => {})
    try {
      await queue.setGlobalConcurrency(1)
    } finally {
      await queue.close()
    }
  }

  const worker = new Worker<JobData, JobResult>(name, process_, {
    connection,
    prefix,
    concurrency,
    // A job whose worker died is failed rather than run again elsewhere: an execution happens at most once.
    maxStalledCount: 0,
    autorun: true
  })
  worker.on("error", (e) =>
    warn({ component: "egl-redis-worker", pool, worker: identity, error: describeError(e) }, "tier worker error")
  )
  await worker.waitUntilReady()

  let closed = false
  return {
    tier,
    pool,
    queue: name,
    worker: identity,
    concurrency,
    get stats() {
      return { completed, failed, refused: { ...refused } }
    },
    close: async () => {
      if (closed) return
      closed = true
      await worker.close()
    }
  }
}
