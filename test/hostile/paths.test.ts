/**
 * Path and method variants of `POST /serving/deploy_model`: whatever Express makes of a request target, a request
 * either reaches the governed route (and so goes through admission) or is answered `404`/`405` as a problem. Proved by
 * counting: every run of the deploy handler is an admitted decision in the ledger, and every `2xx` carries the envelope
 * of one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  bearer,
  DEPLOY_PATH,
  isProblem,
  problemOf,
  serveApp,
  validBody,
  type Reply,
  type ServedApp
} from "./servedApp.ts"

const PATHS = [
  DEPLOY_PATH,
  "/Serving/Deploy_Model",
  "/SERVING/DEPLOY_MODEL",
  "/serving/deploy_model/",
  "/serving/deploy_model//",
  "/serving/deploy_model/.",
  "//serving/deploy_model",
  "/serving//deploy_model",
  "/serving%2Fdeploy_model",
  "/serving%2fdeploy_model",
  "/serving%5Cdeploy_model",
  "/serving\\deploy_model",
  "/serving/deploy_model;x=1",
  "/serving;x=1/deploy_model",
  "/serving/./deploy_model",
  "/./serving/deploy_model",
  "/x/../serving/deploy_model",
  "/serving/x/../deploy_model",
  "/x/%2e%2e/serving/deploy_model",
  "/x/%2E%2E/serving/deploy_model",
  "/serving/%2e/deploy_model",
  "/serving/deploy%5Fmodel",
  "/%73erving/deploy_model",
  "/serving/deploy_model%00",
  "/serving/deploy_model%20",
  "/serving/deploy_model%2F",
  "/serving/deploy_model%3Fx=1",
  "/serving/deploy_model?x=1",
  "/serving/deploy_model?",
  "/serving/deploy_model?__proto__[admin]=1&subject=bob",
  "/serving/deploy_model#fragment",
  "/serving/deploy_model.json",
  "/serving/deploy_model~",
  "http://evil.example/serving/deploy_model",
  "http://127.0.0.1/serving//deploy_model",
  "*"
]

const METHODS = ["POST", "GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]

/** Every (method, path) pair, with a valid body: the handler must still not run without admission. */
const variants = METHODS.flatMap((method) => PATHS.map((path) => ({ method, path })))

describe("path and method variants of the governed route", () => {
  let served: ServedApp
  beforeAll(async () => {
    served = await serveApp()
  })
  afterAll(() => served.close())

  const send = (variant: { method: string; path: string }, authorization?: string): Promise<Reply> =>
    served.send({
      method: variant.method,
      path: variant.path,
      headers: {
        "content-type": "application/json",
        ...(authorization !== undefined ? { authorization } : {})
      },
      body: JSON.stringify(validBody())
    })

  /** A refusal: a problem (HEAD answers the problem's headers without its body). */
  const expectProblem = (reply: Reply, method: string) => {
    if (method === "HEAD") expect(reply.headers["content-type"]).toMatch(/^application\/problem\+json/)
    else expect(isProblem(reply), `${reply.status} ${reply.text.slice(0, 200)}`).toBe(true)
  }

  it("without credentials every variant is 401 or 404, never 2xx, and nothing is recorded", async () => {
    const before = await served.ledgerSize()
    for (const variant of variants) {
      const reply = await send(variant)
      expect([401, 404], `${variant.method} ${variant.path} → ${reply.status}`).toContain(reply.status)
      expectProblem(reply, variant.method)
    }
    expect(served.deployed).toEqual([])
    expect(await served.ledgerSize()).toBe(before)
  })

  it("as carol (denied), a variant is a 403 decision or a 404/405 problem; the handler never runs", async () => {
    for (const variant of variants) {
      const reply = await send(variant, bearer("carol"))
      expect([403, 404, 405], `${variant.method} ${variant.path} → ${reply.status}`).toContain(reply.status)
      expectProblem(reply, variant.method)
      if (reply.status === 403) expect(problemOf(reply).reasonCodes).toContain("POLICY_DENY")
    }
    expect(served.deployed).toEqual([])
    expect((await served.decisions()).filter((d) => d.outcome === "admitted")).toEqual([])
  })

  it("as alice, a variant is admitted through the gate or a 404/405 problem; handler runs === admitted decisions", async () => {
    const admittedIds: Array<string> = []
    for (const variant of variants) {
      const runsBefore = served.deployed.length
      const reply = await send(variant, bearer("alice"))
      const label = `${variant.method} ${variant.path} → ${reply.status}`
      if (reply.status >= 200 && reply.status < 300) {
        expect(reply.status, label).toBe(201)
        const body = reply.json as { envelope: { id: string; decision: { outcome: string } }; deployment: unknown }
        expect(body.envelope.decision.outcome, label).toBe("admitted")
        expect(body.deployment, label).toEqual({ deployedFor: body.envelope.id })
        expect(served.deployed.slice(runsBefore), label).toEqual([body.envelope.id])
        admittedIds.push(body.envelope.id)
      } else {
        expect([404, 405], label).toContain(reply.status)
        expectProblem(reply, variant.method)
        expect(served.deployed.length, label).toBe(runsBefore)
      }
    }
    // The route itself is reached (so the counting can see an admission), and only by POST.
    expect(admittedIds.length).toBeGreaterThan(0)
    const decisions = await served.decisions()
    const admitted = decisions.filter((d) => d.outcome === "admitted")
    expect(served.deployed).toEqual(admitted.map((d) => d.envelopeId))
    expect([...admittedIds].sort()).toEqual(admitted.map((d) => d.envelopeId).sort())
    for (const d of admitted) expect(d.subject.id).toBe("alice")
  })

  it("every non-POST method on the exact path is a 404 problem, with credentials or without", async () => {
    for (const method of METHODS.filter((m) => m !== "POST")) {
      for (const authorization of [undefined, bearer("alice"), bearer("bob")]) {
        const reply = await send({ method, path: DEPLOY_PATH }, authorization)
        expect(reply.status, `${method} ${String(authorization)}`).toBe(404)
        expectProblem(reply, method)
      }
    }
  })

  it("the ledger still verifies after every variant", async () => {
    const report = await served.governance.verifyLedger()
    expect(report.ok).toBe(true)
    const health = await served.send({ method: "GET", path: "/healthz" })
    expect(health.status).toBe(200)
  })
})
