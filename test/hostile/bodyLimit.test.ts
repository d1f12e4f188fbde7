/**
 * Bodies over the limit (64 kB by default): `413` problem+json `REQUEST_TOO_LARGE` however the body is framed
 * (`Content-Length`, chunked, compressed), before identity or admission, with nothing in the ledger. A declared length
 * over the limit is refused without waiting for the body; a length shorter than the body frames the body (the rest is
 * not a request) and never reaches a decision. A compressed body that does not decompress is a client error (`400`),
 * never a `5xx`.
 */
import { gzipSync } from "node:zlib"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  bearer,
  DEPLOY_PATH,
  exchange,
  firstJsonBody,
  head,
  problemOf,
  serveApp,
  validBody,
  type ServedApp
} from "./servedApp.ts"

const LIMIT = 64 * 1024

/** A body the schema would accept, padded past the limit with an extra key. */
const oversized = (bytes = 100_000): string => JSON.stringify({ ...validBody(), pad: "x".repeat(bytes) })

const chunked = (text: string, size: number): string => {
  let out = ""
  for (let at = 0; at < text.length; at += size) {
    const chunk = text.slice(at, at + size)
    out += `${Buffer.byteLength(chunk).toString(16)}\r\n${chunk}\r\n`
  }
  return `${out}0\r\n\r\n`
}

describe("request bodies over the limit, framed every way", () => {
  let served: ServedApp
  beforeAll(async () => {
    served = await serveApp()
  })
  afterAll(() => served.close())

  let ledgerBefore = 0
  beforeAll(async () => {
    ledgerBefore = await served.ledgerSize()
  })

  const expectTooLarge = (problem: unknown) =>
    expect(problem).toMatchObject({
      status: 413,
      title: "Request too large",
      reasonCodes: ["REQUEST_TOO_LARGE"],
      detail: `the request body exceeds ${LIMIT} bytes`
    })

  it.each([
    ["alice (would be admitted)", bearer("alice")],
    ["carol (would be denied)", bearer("carol")],
    ["no key", undefined]
  ])("with an exact Content-Length, as %s: 413 problem", async (_label, authorization) => {
    const reply = await served.send({
      path: DEPLOY_PATH,
      headers: { "content-type": "application/json", ...(authorization !== undefined ? { authorization } : {}) },
      body: oversized()
    })
    expect(reply.status).toBe(413)
    expect(reply.headers["content-type"]).toMatch(/^application\/problem\+json/)
    expectTooLarge(problemOf(reply))
  })

  it("one byte over the limit is 413; at the limit it is parsed", async () => {
    const base = JSON.stringify({ ...validBody(), pad: "" })
    const atLimit = JSON.stringify({ ...validBody(), pad: "x".repeat(LIMIT - Buffer.byteLength(base)) })
    expect(Buffer.byteLength(atLimit)).toBe(LIMIT)
    const ok = await served.send({
      path: DEPLOY_PATH,
      headers: { "content-type": "application/json", authorization: bearer("carol") },
      body: atLimit
    })
    // Parsed and decided (carol is denied), not refused for its size.
    expect(ok.status).toBe(403)
    const over = await served.send({
      path: DEPLOY_PATH,
      headers: { "content-type": "application/json", authorization: bearer("carol") },
      body: `${atLimit} `
    })
    expect(over.status).toBe(413)
    expectTooLarge(problemOf(over))
  })

  it.each([
    ["in 16 kB chunks", 16_384],
    ["in 1 kB chunks", 1_024],
    ["in one chunk", 200_000]
  ])("with Transfer-Encoding: chunked, %s: 413 problem", async (_label, size) => {
    const raw = await exchange(
      served.port,
      head(`POST ${DEPLOY_PATH} HTTP/1.1`, [
        `Authorization: ${bearer("alice")}`,
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        "Connection: close"
      ]) + chunked(oversized(), size),
      { waitMs: 5_000 }
    )
    expect(raw.statuses).toEqual([413])
    expect(raw.text).toMatch(/\r\nContent-Type: application\/problem\+json/i)
    expectTooLarge(firstJsonBody(raw))
  })

  it("gzip-compressed under the limit but over it once inflated: 413 problem", async () => {
    const compressed = gzipSync(Buffer.from(oversized(1_000_000)))
    expect(compressed.length).toBeLessThan(LIMIT / 8)
    const reply = await served.send({
      path: DEPLOY_PATH,
      headers: { "content-type": "application/json", "content-encoding": "gzip", authorization: bearer("alice") },
      body: compressed
    })
    expect(reply.status).toBe(413)
    expectTooLarge(problemOf(reply))
  })

  it("a Content-Length over the limit with a short body: 413 problem without waiting for bytes that never come", async () => {
    // The client declares 10 MB, sends a small valid body and waits. The declared length alone is over the limit;
    // the app must not hold the connection for the rest (it is never sent).
    const body = JSON.stringify(validBody())
    const raw = await exchange(
      served.port,
      head(`POST ${DEPLOY_PATH} HTTP/1.1`, [
        `Authorization: ${bearer("alice")}`,
        "Content-Type: application/json",
        "Content-Length: 10000000"
      ]) + body,
      { waitMs: 3_000 }
    )
    expect(raw.statuses, `after ${Math.round(raw.elapsedMs)} ms: ${JSON.stringify(raw.text.slice(0, 200))}`).toEqual([
      413
    ])
    expectTooLarge(firstJsonBody(raw))
  })

  it("a Content-Length over the limit with Expect: 100-continue: a 413 follows without the upload", async () => {
    // Node's server answers `100 Continue` by itself before the app sees the request (createServer without a
    // `checkContinue` listener); the final answer must still come without the 10 MB.
    const raw = await exchange(
      served.port,
      head(`POST ${DEPLOY_PATH} HTTP/1.1`, [
        `Authorization: ${bearer("alice")}`,
        "Content-Type: application/json",
        "Content-Length: 10000000",
        "Expect: 100-continue"
      ]),
      { waitMs: 3_000 }
    )
    const final = raw.statuses.filter((status) => status !== 100)
    expect(final, `after ${Math.round(raw.elapsedMs)} ms: ${JSON.stringify(raw.text.slice(0, 200))}`).toEqual([413])
  })

  it("a Content-Length shorter than the body: only the declared bytes are the body; the rest is no request", async () => {
    const raw = await exchange(
      served.port,
      head(`POST ${DEPLOY_PATH} HTTP/1.1`, [
        `Authorization: ${bearer("alice")}`,
        "Content-Type: application/json",
        "Content-Length: 100"
      ]) + oversized(),
      { waitMs: 3_000 }
    )
    // The 100 declared bytes are not JSON (400), and the bytes after them are not an HTTP request (Node's 400, then
    // the connection closes). Whichever answer leaves first, none is a success and the connection ends.
    expect(raw.statuses.length).toBeGreaterThan(0)
    for (const status of raw.statuses) expect(status).toBe(400)
    expect(raw.closedByServer).toBe(true)
  })

  it("Content-Length and Transfer-Encoding together (request smuggling): 400, the connection closes", async () => {
    const raw = await exchange(
      served.port,
      head(`POST ${DEPLOY_PATH} HTTP/1.1`, [
        `Authorization: ${bearer("alice")}`,
        "Content-Type: application/json",
        "Content-Length: 10",
        "Transfer-Encoding: chunked"
      ]) + chunked(oversized(), 16_384),
      { waitMs: 3_000 }
    )
    expect(raw.statuses).toEqual([400])
    expect(raw.closedByServer).toBe(true)
  })

  it.each([
    ["gzip", "gzip", "this is not gzip"],
    ["deflate", "deflate", "this is not deflate"],
    ["br", "br", "this is not brotli"],
    ["gzip, truncated", "gzip", gzipSync(Buffer.from(JSON.stringify(validBody()))).subarray(0, 20)]
  ])("Content-Encoding %s that does not decompress: 400 problem, not a 5xx", async (_label, encoding, body) => {
    for (const authorization of [bearer("alice"), undefined]) {
      const reply = await served.send({
        path: DEPLOY_PATH,
        headers: {
          "content-type": "application/json",
          "content-encoding": encoding,
          ...(authorization !== undefined ? { authorization } : {})
        },
        body
      })
      expect(reply.status, reply.text.slice(0, 200)).toBe(400)
      expect(problemOf(reply).reasonCodes).toEqual(["INVALID_REQUEST"])
    }
  })

  it("Content-Encoding gzip that decompresses to a valid body: decided like any other", async () => {
    const reply = await served.send({
      path: DEPLOY_PATH,
      headers: { "content-type": "application/json", "content-encoding": "gzip", authorization: bearer("carol") },
      body: gzipSync(Buffer.from(JSON.stringify(validBody())))
    })
    expect(reply.status).toBe(403)
    expect(problemOf(reply).reasonCodes).toEqual(["POLICY_DENY"])
  })

  it("an unknown Content-Encoding: 415 problem", async () => {
    const reply = await served.send({
      path: DEPLOY_PATH,
      headers: { "content-type": "application/json", "content-encoding": "compress", authorization: bearer("alice") },
      body: JSON.stringify(validBody())
    })
    expect(reply.status).toBe(415)
    expect(problemOf(reply).reasonCodes).toEqual(["INVALID_REQUEST"])
  })

  it("nothing above reached a decision but the two controls; the app is healthy and its ledger verifies", async () => {
    const decisions = await served.decisions()
    // The at-limit and the gzip controls, both carol's denials; each added exactly its decision record.
    expect(decisions).toHaveLength(2)
    for (const d of decisions) expect(d).toMatchObject({ outcome: "denied", subject: { id: "carol" } })
    expect(await served.ledgerSize()).toBe(ledgerBefore + 2)
    expect(served.deployed).toEqual([])
    const health = await served.send({ method: "GET", path: "/healthz" })
    expect(health.status).toBe(200)
    expect((await served.governance.verifyLedger()).ok).toBe(true)
  })
})
