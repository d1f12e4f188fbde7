/**
 * `egl.json(options)`: `express.json()` with a cap that answers at once. body-parser reads (and discards) a whole
 * declared body before it answers `413`, so a client declaring `Content-Length: 10000000` would hold the connection
 * until it sent every byte or the server's timeout. This parser refuses a declared length over the limit before reading
 * anything — `413` problem, `Connection: close` — and otherwise parses as `express.json(options)` does (which still
 * enforces the limit on chunked bodies while reading).
 * @module
 */
import { Problem } from "@egl/core"
import expressModule, { type RequestHandler } from "express"
import { sendProblem } from "./ProblemResponse.ts"

/** Options of {@link json}: those of `express.json()`, with a limit (default `100kb`) in bytes or as `64kb`, `1mb`. */
export type JsonOptions = NonNullable<Parameters<typeof expressModule.json>[0]>

const UNITS: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }

/** A body size limit in bytes, as body-parser reads it (`"64kb"`, `1024`). Throws on anything else. */
export const limitInBytes = (limit: JsonOptions["limit"]): number => {
  if (limit === undefined) return 100 * 1024
  if (typeof limit === "number" && Number.isInteger(limit) && limit >= 0) return limit
  const match = typeof limit === "string" ? /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(limit) : null
  if (match === null) throw new TypeError(`egl.json: invalid limit ${JSON.stringify(limit)}`)
  return Math.floor(Number(match[1]) * UNITS[(match[2] ?? "b").toLowerCase()]!)
}

/**
 * The JSON body parser for governed apps.
 *
 * @example
 * ```ts
 * app.use(egl.json({ limit: "64kb" }))
 * ```
 */
export const json = (options?: JsonOptions): RequestHandler => {
  const limit = limitInBytes(options?.limit)
  const parse = expressModule.json({ ...options, limit })
  return function eglJson(req, res, next) {
    const declared = Number(req.headers["content-length"])
    if (Number.isFinite(declared) && declared > limit) {
      // Do not read the body: answer and close the connection rather than drain what the client declared.
      res.setHeader("Connection", "close")
      sendProblem(res, Problem.tooLarge(limit))
      return
    }
    parse(req, res, next)
  }
}
