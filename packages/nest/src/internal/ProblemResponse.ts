/**
 * Sends a problem body through Nest's HTTP adapter, so it is written like any other reply of the platform, with the
 * same headers as `@egl/express`.
 * @module
 */
import type { ArgumentsHost, HttpServer } from "@nestjs/common"
import { Problem } from "@egl/core"

/** Writes `problem` as `application/problem+json` with its status (and `WWW-Authenticate` on a `401`). */
export const sendProblem = (adapter: HttpServer, host: ArgumentsHost, problem: Problem.Problem): void => {
  const response: unknown = host.switchToHttp().getResponse()
  if (adapter.isHeadersSent(response)) {
    adapter.end(response)
    return
  }
  // Set before reply(): the Express adapter keeps a JSON-compatible Content-Type already on the response.
  adapter.setHeader(response, "Content-Type", `${Problem.CONTENT_TYPE}; charset=utf-8`)
  for (const [name, value] of Object.entries(Problem.headersOf(problem))) adapter.setHeader(response, name, value)
  adapter.reply(response, problem, problem.status)
}
