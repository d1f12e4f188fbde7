/**
 * The error a governed route passes to `next(err)` when a request is refused: it carries the RFC 9457 problem body
 * and the typed error behind it, and an HTTP `status` so Express's default handler answers the right status even where
 * {@link errorHandler} is not installed.
 * @module
 */
import type { Gate, Problem } from "@egl/core"

/** A refused request: `problem` is the body to send, `cause` the typed EGL error. */
export class EglProblemError extends Error {
  override readonly name = "EglProblemError"
  /** HTTP status (read by Express's final handler). */
  readonly status: number
  /** Same as `status` (read by http-errors aware handlers). */
  readonly statusCode: number
  /** Safe to show to the client: the problem body carries no secret. */
  readonly expose = true
  constructor(
    readonly problem: Problem.Problem,
    override readonly cause?: Gate.Refused["error"]
  ) {
    super(problem.detail)
    this.status = problem.status
    this.statusCode = problem.status
  }
}
