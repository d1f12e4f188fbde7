import type { Gate } from "@egl/core"
import type { Response } from "express"
import { sendProblem } from "../ProblemResponse.ts"

type Callback = (error?: Error | null) => void

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i

const bytesOf = (chunk: unknown, encoding: unknown): Buffer =>
  Buffer.isBuffer(chunk)
    ? chunk
    : chunk instanceof Uint8Array
      ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      : Buffer.from(String(chunk), typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8")

/**
 * The outcome of a finished response: its bytes, digested as sent; or, when the deterministic cache may keep the output
 * (a cache-eligible execution answering JSON), its JSON value.
 */
const outcomeOf = (res: Response, body: Buffer, cacheable: boolean): Gate.Outcome => {
  const type = res.getHeader("content-type")
  if (cacheable && body.length > 0 && typeof type === "string" && JSON_TYPE.test(type)) {
    try {
      return { statusCode: res.statusCode, output: JSON.parse(body.toString("utf8")) }
    } catch {
      // Not JSON after all: its bytes are digested instead.
    }
  }
  return { statusCode: res.statusCode, outputBytes: body }
}

/**
 * Holds a governed response until its outcome is in the ledger: `write` and `end` buffer the body; when the handler
 * ends the response, the outcome (status, output digest) is recorded, and only then is the body sent. If the outcome
 * cannot be recorded and the headers have not left yet, the caller gets the `503` problem instead (SPEC §3, invariant 5:
 * nobody sees a result the ledger does not hold). A connection closed before the response ended records a failure.
 */
export const holdResponse = (res: Response, entry: Gate.Entry): void => {
  const chunks: Array<Buffer> = []
  const write = res.write
  const end = res.end as unknown as (this: Response, chunk: Buffer, callback?: Callback) => Response
  let ended = false

  res.write = function heldWrite(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    if (chunk !== undefined && chunk !== null) chunks.push(bytesOf(chunk, encoding))
    const cb = typeof encoding === "function" ? encoding : callback
    if (typeof cb === "function") process.nextTick(cb as Callback)
    return true
  } as Response["write"]

  res.end = function heldEnd(chunk?: unknown, encoding?: unknown, callback?: unknown): Response {
    if (ended) return res
    ended = true
    let cb: unknown = callback
    if (typeof chunk === "function") {
      cb = chunk
      chunk = undefined
    } else if (typeof encoding === "function") {
      cb = encoding
      encoding = undefined
    }
    if (chunk !== undefined && chunk !== null) chunks.push(bytesOf(chunk, encoding))
    res.write = write
    res.end = end as unknown as Response["end"]
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
    void entry.finish(outcomeOf(res, body, entry.envelope.cache.eligible)).then(
      (problem) => {
        if (problem !== undefined && !res.headersSent) {
          res.removeHeader("Content-Length")
          res.removeHeader("ETag")
          sendProblem(res, problem)
          if (typeof cb === "function") process.nextTick(cb as Callback)
          return
        }
        end.call(res, body, typeof cb === "function" ? (cb as Callback) : undefined)
      },
      (error: unknown) => res.destroy(error instanceof Error ? error : new Error(String(error)))
    )
    return res
  } as Response["end"]

  res.once("close", () => {
    if (!ended) {
      ended = true
      // Nobody is waiting for this answer: a failure to record it surfaces in the ledger's own fail-closed path.
      entry
        .finish({
          statusCode: res.statusCode >= 400 ? res.statusCode : 499,
          error: "the connection closed before the response ended"
        })
        .catch(() => undefined)
    }
  })
}
