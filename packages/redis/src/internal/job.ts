/**
 * What travels through a tier queue between the producer (the API instance that admitted) and the worker.
 * @module
 */
import type { ExecutionClass } from "@egl/core"

/** BullMQ queue name of a tier's pool. */
export const queueName = (tier: ExecutionClass.Tier): string => `egl-pool-t${tier}`

/** Job payload. `envelope` and `input` are untrusted on the worker side: it decodes and verifies both. */
export interface JobData {
  readonly v: 1
  readonly envelope: unknown
  /** The execution input; its canonical digest must equal `envelope.execution.inputDigest`. */
  readonly input: unknown
  /** Epoch ms after which the producer no longer waits: a worker must not start the job after it. */
  readonly deadline: number
}

/** What a worker returns for a completed job. */
export interface JobResult {
  readonly output: unknown
  /** Identity of the worker that ran it (`host/pid/pool`). */
  readonly worker: string
  /** Position of the `completed` execution record. */
  readonly ledger: { readonly index: number; readonly hash: string }
}

/** Failure codes a worker puts in a failed job's reason, so the producer can type them. */
export type FailureCode =
  | "ENVELOPE_INVALID"
  | "GRANT_REUSED"
  | "GRANT_EXPIRED"
  | "GRANT_STORE_UNAVAILABLE"
  | "LEDGER_UNAVAILABLE"
  | "EXECUTION_FAILED"
  | "SUBMISSION_EXPIRED"

const FAILURE = /^([A-Z][A-Z_]+): ([\s\S]*)$/

/** `CODE: detail`, readable in any BullMQ dashboard as well. */
export const failureReason = (code: FailureCode, detail: string): string => `${code}: ${detail}`

/** Splits a failed job's reason; a reason this package did not write (a stalled job, a crash) has no code. */
export const parseFailure = (reason: string): { readonly code: string | undefined; readonly detail: string } => {
  const m = FAILURE.exec(reason)
  return m !== null ? { code: m[1], detail: m[2]! } : { code: undefined, detail: reason }
}
