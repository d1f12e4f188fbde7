/**
 * The exception filter that answers EGL's refusals, and the request body errors of the platform's body parser, as RFC
 * 9457 problem bodies (`application/problem+json`), exactly as `@egl/core`'s `Problem` module builds them.
 * @module
 */
import { Catch, HttpException, type ArgumentsHost } from "@nestjs/common"
import { BaseExceptionFilter } from "@nestjs/core"
import { Problem } from "@egl/core"
import { EglProblemException } from "./EglProblemException.ts"
import { sendProblem } from "./internal/ProblemResponse.ts"

/**
 * The problem an exception stands for: an {@link EglProblemException}'s own, or the problem of a request body the
 * parser refused (`413 REQUEST_TOO_LARGE` over the limit, `400 INVALID_REQUEST` for malformed JSON, `415` for an
 * unsupported encoding). `undefined` for any other exception.
 */
export const problemOf = (exception: unknown): Problem.Problem | undefined => {
  if (exception instanceof EglProblemException) return exception.problem
  // Nest's Express adapter turns body-parser's errors into HttpExceptions (a BadRequestException for malformed JSON,
  // an HttpException with the error's status otherwise) whose cause is the original error.
  return exception instanceof HttpException ? Problem.fromBodyParserError(exception.cause) : undefined
}

/**
 * Sends {@link EglProblemException}s and the body parser's refusals (`413` body over the limit, `400` malformed JSON) as
 * problem bodies with `Content-Type: application/problem+json`; every other exception goes to Nest's default handling
 * (`BaseExceptionFilter`).
 *
 * `@Governed()` applies it (narrowed to `EglProblemException`) to governed handlers by itself. Body parsing happens
 * before routing, so its errors only reach global filters: register this one globally for them, either as a provider
 * (Nest instantiates it with its HTTP adapter) or with the adapter passed in.
 *
 * @example
 * ```ts
 * // in a module
 * providers: [{ provide: APP_FILTER, useClass: EglProblemFilter }]
 * // or on the application, before listen()
 * app.useGlobalFilters(new EglProblemFilter(app.getHttpAdapter()))
 * ```
 */
@Catch(HttpException)
export class EglProblemFilter extends BaseExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): void {
    const problem = problemOf(exception)
    if (problem === undefined) return super.catch(exception, host)
    const adapter = this.applicationRef ?? this.httpAdapterHost?.httpAdapter
    if (adapter === undefined) {
      throw new Error(
        "EglProblemFilter has no HTTP adapter: register it with APP_FILTER or new EglProblemFilter(app.getHttpAdapter())"
      )
    }
    sendProblem(adapter, host, problem)
  }
}
