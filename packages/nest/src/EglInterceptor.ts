/**
 * The interceptor of governed handlers: serves a verified cached output, or runs the handler and records its outcome in
 * the ledger before the response leaves.
 * @module
 */
import {
  Dependencies,
  HttpException,
  Injectable,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor
} from "@nestjs/common"
import { HTTP_CODE_METADATA } from "@nestjs/common/constants.js"
import { Reflector } from "@nestjs/core"
import type { Gate } from "@egl/core"
import { catchError, concatMap, defaultIfEmpty, from, type Observable } from "rxjs"
import { EglProblemException } from "./EglProblemException.ts"
import { ADMISSION, type GovernedRequest } from "./internal/GovernedMetadata.ts"

/** Resolves once the outcome is recorded; throws the `503` problem when it cannot be. */
const record = async (entry: Gate.Entry, outcome: Gate.Outcome): Promise<void> => {
  const problem = await entry.finish(outcome)
  if (problem !== undefined) throw new EglProblemException(problem)
}

/**
 * Completes what {@link EglGuard} admitted. With a cached output (deterministic cache hit) the handler does not run and
 * the cached output is the response. Otherwise the handler runs and its value, with the status Nest will send (the
 * handler's `@HttpCode()`, else `201` for `POST` and `200` otherwise), is recorded as the execution's outcome before the
 * value goes on; if the ledger cannot record it, the caller gets the `503` problem instead of the value. A handler that
 * throws is recorded as failed (with the `HttpException`'s status, else `500`) and its exception goes on unchanged.
 *
 * Applied by `@Governed()`.
 */
// @Dependencies rather than parameter metadata: see EglGuard.
@Injectable()
@Dependencies(Reflector)
export class EglInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<GovernedRequest>()
    const admission = request[ADMISSION]
    // Nothing admitted (the interceptor applied without @Governed()), or the outcome is already owned by the
    // interceptor of a controller-level @Governed(): nothing to record here.
    if (admission === undefined || admission.intercepted) return next.handle()
    admission.intercepted = true
    const { entry } = admission
    const statusCode =
      this.reflector.get<number | undefined>(HTTP_CODE_METADATA, context.getHandler()) ??
      (request.method === "POST" ? 201 : 200)

    if (entry.cached !== undefined) {
      const output = entry.cached.output
      return from(record(entry, { statusCode, output }).then(() => output))
    }
    return next.handle().pipe(
      catchError((error: unknown) =>
        from(
          entry
            .finish({
              statusCode: error instanceof HttpException ? error.getStatus() : 500,
              error: error instanceof Error ? error.message : String(error)
            })
            .then(() => Promise.reject(error))
        )
      ),
      // A handler whose Observable completes without a value still has an outcome to record.
      defaultIfEmpty(undefined),
      concatMap((output: unknown) => from(record(entry, { statusCode, output }).then(() => output)))
    )
  }
}
