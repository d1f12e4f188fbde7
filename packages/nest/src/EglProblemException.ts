/**
 * A refusal of EGL as a NestJS `HttpException`: its response is the RFC 9457 problem body and its status the problem's.
 * @module
 */
import { HttpException } from "@nestjs/common"
import type { Problem } from "@egl/core"

/**
 * Thrown by {@link EglGuard} when the gate refuses a request (`401`, `400`, `403`, `503`) and by {@link EglInterceptor}
 * when the outcome cannot be recorded (`503 LEDGER_UNAVAILABLE`). `getResponse()` is the problem body itself;
 * {@link EglProblemFilter} sends it as `application/problem+json`.
 *
 * @example
 * ```ts
 * try { ... } catch (e) { if (e instanceof EglProblemException) console.log(e.problem.reasonCodes) }
 * ```
 */
export class EglProblemException extends HttpException {
  /** The problem body sent to the caller. */
  readonly problem: Problem.Problem

  /** `cause` is the typed error of `@egl/core` behind the problem, when there is one. */
  constructor(problem: Problem.Problem, cause?: unknown) {
    super({ ...problem }, problem.status, cause === undefined ? undefined : { cause })
    this.problem = problem
    this.message = problem.detail
  }
}
