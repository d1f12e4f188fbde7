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
  for (const [name, value] of Object.entries(Problem.headersOf(problem))) res.setHeader(name, value)
  res.setHeader("Content-Type", `${Problem.CONTENT_TYPE}; charset=utf-8`)
  res.send(JSON.stringify(problem))
}

/** The problem for a body parser error, or undefined when `err` is not one (see `Problem.fromBodyParserError`). */
export const problemOfBodyError = Problem.fromBodyParserError

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
