/**
 * 10 000 generated malformed bodies (see `malformedRequest.ts`), sent as alice (whose valid requests are admitted) over
 * one keep-alive agent from a child process: every answer is the status its generator expects (`400`, or `415` for a
 * charset the body parser refuses), as a problem with `INVALID_REQUEST`; no `5xx`; nothing reaches a decision; the
 * process stays healthy and the ledger verifies. The sample is fixed by its seed; a failure lists the offending
 * requests (generator, what was broken, body).
 */
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { malformedRequest, type MalformedRequest } from "./malformedRequest.ts"
import { runFuzzClient, type FuzzReply } from "./fuzzClient.ts"
import { bearer, DEPLOY_PATH, isProblem, serveApp, type ProblemBody, type ServedApp } from "./servedApp.ts"

const SEED = 20_261_123
const RUNS = 10_000
/** Requests in flight at once, one socket each (2 is as fast as more on two cores). */
const CONCURRENCY = 2

interface Finding {
  readonly generator: string
  readonly variant: string
  readonly contentType: string | undefined
  readonly expected: number
  readonly status: number
  readonly answer: string
  /** The body as text when it is UTF-8, else base64. */
  readonly body: string
}

const show = (body: Uint8Array): string => {
  const text = Buffer.from(body).toString("utf8")
  const exact = Buffer.from(text, "utf8").equals(Buffer.from(body))
  const shown = exact ? text : `base64:${Buffer.from(body).toString("base64")}`
  return shown.length > 400 ? `${shown.slice(0, 400)}… (${body.length} bytes)` : shown
}

/** Why a reply is wrong for its request, or undefined when it is right. */
const verdict = (req: MalformedRequest, reply: FuzzReply): string | undefined => {
  if (reply.status !== req.expectedStatus) return "status"
  let json: unknown
  try {
    json = JSON.parse(reply.text)
  } catch {
    return "body is not JSON"
  }
  if (!isProblem({ status: reply.status, headers: { "content-type": reply.contentType }, text: reply.text, json }))
    return "not problem+json"
  return (json as ProblemBody).reasonCodes.includes("INVALID_REQUEST") ? undefined : "reason codes"
}

describe(`${RUNS} generated malformed bodies (fast-check seed ${SEED})`, () => {
  let served: ServedApp
  beforeAll(async () => {
    served = await serveApp()
  })
  afterAll(() => served.close())

  it("are all 400 (415 for a refused charset) problems with INVALID_REQUEST, zero 5xx, nothing admitted", async () => {
    const requests = fc.sample(malformedRequest, { seed: SEED, numRuns: RUNS })
    expect(requests).toHaveLength(RUNS)
    const ledgerBefore = await served.ledgerSize()

    const started = performance.now()
    const replies = await runFuzzClient(
      {
        port: served.port,
        path: DEPLOY_PATH,
        authorization: bearer("alice"),
        concurrency: CONCURRENCY,
        requests: requests.map(({ contentType, body }) => ({ contentType, body }))
      },
      50_000
    )
    const elapsedMs = performance.now() - started

    const findings: Array<Finding> = []
    const statuses = new Map<number, number>()
    const perGenerator = new Map<string, number>()
    requests.forEach((req, i) => {
      const reply = replies[i]!
      statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1)
      perGenerator.set(req.generator, (perGenerator.get(req.generator) ?? 0) + 1)
      const wrong = verdict(req, reply)
      if (wrong !== undefined) {
        findings.push({
          generator: req.generator,
          variant: `${wrong}: ${req.variant}`,
          contentType: req.contentType,
          expected: req.expectedStatus,
          status: reply.status,
          answer: reply.text.slice(0, 300),
          body: show(req.body)
        })
      }
    })
    console.info(`${RUNS} malformed requests answered in ${Math.round(elapsedMs)} ms (seed ${SEED})`)

    const fiveHundreds = [...statuses].filter(([status]) => status >= 500)
    expect(fiveHundreds, `5xx answers (seed ${SEED})`).toEqual([])
    expect(findings.slice(0, 20), `${findings.length} wrong answers (seed ${SEED})`).toEqual([])
    expect([...statuses.keys()].sort((a, b) => a - b)).toEqual([400, 415])
    // Every generator took part.
    for (const generator of ["notJson", "invalidUtf8", "wrongShape", "wrongContentType"]) {
      expect(perGenerator.get(generator) ?? 0, generator).toBeGreaterThan(500)
    }
    // Nothing reached a decision, let alone the handler.
    expect(served.deployed).toEqual([])
    expect(await served.ledgerSize()).toBe(ledgerBefore)
  }, 60_000)

  it("leave the process healthy and the ledger verifying", async () => {
    const health = await served.send({ method: "GET", path: "/healthz" })
    expect(health.status).toBe(200)
    const verify = await served.send({ method: "GET", path: "/ledger/verify" })
    expect(verify.status).toBe(200)
    expect(verify.json).toMatchObject({ ok: true })
    // A valid request still goes through after the storm.
    const admitted = await served.send({
      path: DEPLOY_PATH,
      headers: { authorization: bearer("alice"), "content-type": "application/json" },
      body: JSON.stringify({
        model: { id: "m", version: "1" },
        resources: { gpus: 1, memoryGiB: 1, replicas: 1 },
        environment: "dev"
      })
    })
    expect(admitted.status).toBe(201)
  })
})
