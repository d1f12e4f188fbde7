/**
 * Problem responses (RFC 9457) for Express: {@link sendProblem} writes one, {@link errorHandler} renders refusals of
 * governed routes and the JSON body parser's errors (`413` over the limit, `400` malformed JSON) as
 * `application/problem+json`, and passes every other error on.
 * @module
 */
import { Problem } from "@egl/core"
import type { ErrorRequestHandler, Response } from "express"
import { EglProblemError } from "./EglProblemError.ts"

/** Writes a problem body with its status and media type (and `WWW-Authenticate` on a `401`). */
export const sendProblem = (res: Response, problem: Problem.Problem): void => {
  res.status(problem.status)
  if (problem.status === 401) res.setHeader("WWW-Authenticate", 'Bearer realm="egl"')
  res.setHeader("Content-Type", `${Problem.CONTENT_TYPE}; charset=utf-8`)
  res.send(JSON.stringify(problem))
}

/** An error of the `body-parser` family (`express.json()`), by its documented `type`. */
interface BodyParserError {
  readonly type?: unknown
  readonly status?: unknown
  readonly limit?: unknown
}

/** The problem for a body parser error, or undefined when `err` is not one. */
export const problemOfBodyError = (err: unknown): Problem.Problem | undefined => {
  if (typeof err !== "object" || err === null) return undefined
  const { type, status, limit } = err as BodyParserError
  switch (type) {
    case "entity.too.large":
      return Problem.tooLarge(typeof limit === "number" ? limit : undefined)
    case "entity.parse.failed":
      return Problem.malformedBody()
    case "encoding.unsupported":
    case "charset.unsupported":
      return Problem.make(415, ["INVALID_REQUEST"], "unsupported content encoding or charset")
    case "request.aborted":
    case "request.size.invalid":
    case "stream.encoding.set":
      return Problem.malformedBody("the request body could not be read")
    default:
      return typeof type === "string" && typeof status === "number" && status >= 400 && status < 500
        ? Problem.malformedBody("the request body could not be read")
        : undefined
  }
}

/**
 * The error handler to install after the routes: renders refusals and body parser errors as problem+json; anything
 * else goes on to the next error handler untouched.
 *
 * @example
 * ```ts
 * app.use(egl.errorHandler())
 * ```
 */
export const errorHandler = (): ErrorRequestHandler =>
  function eglErrorHandler(err, _req, res, next) {
    const problem = err instanceof EglProblemError ? err.problem : problemOfBodyError(err)
    if (problem === undefined || res.headersSent) return next(err)
    sendProblem(res, problem)
  }
