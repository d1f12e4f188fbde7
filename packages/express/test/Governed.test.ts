import { Gate, type Ledger } from "@egl/core"
import express from "express"
import { request } from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as egl from "../src/index.ts"
import { deployBody, post, serve } from "./fixture.ts"

const executions = (records: ReadonlyArray<Ledger.LedgerRecord>, id: string) =>
  records
    .filter((r) => r.kind === "execution" && r.ref === id)
    .map((r) => JSON.parse(r.body) as { phase: string; statusCode?: number; error?: string; outputDigest?: string })

describe("egl.governed", () => {
  let app: Awaited<ReturnType<typeof serve>>
  const calls = { deploy: 0, normalize: 0, tier3InFlight: 0, tier3Max: 0 }
  let release: (() => void) | undefined

  beforeAll(async () => {
    app = await serve((a) => {
      a.post("/deploy", egl.governed("serving.deploy_model"), async (req, res) => {
        calls.deploy++
        const envelope = req.envelope!
        if (envelope.granted?.tier === 3) {
          calls.tier3InFlight++
          calls.tier3Max = Math.max(calls.tier3Max, calls.tier3InFlight)
          await new Promise((r) => setTimeout(r, 30))
          calls.tier3InFlight--
        }
        if (req.query["fail"] === "ledger") app.ledger.failing = true
        if (req.query["fail"] === "throw") throw new Error("the deployment exploded")
        if (req.query["hang"] === "1") await new Promise<void>((r) => (release = r))
        res.status(201).json({ id: envelope.id, tier: envelope.granted?.tier })
      })
      a.post("/normalize", egl.governed("text.normalize"), (req, res) => {
        calls.normalize++
        const text = (req.body as { input: { text: string } }).input.text
        res.json({ text: text.trim().toLowerCase() })
      })
      a.post("/ungated", egl.governed("serving.deploy_model"), (_req, res) => res.json({}))
    })
  })
  afterAll(() => app.close())

  it("admits, puts the sealed envelope on req.envelope and records the outcome before the response arrives", async () => {
    const res = await post(`${app.url}/deploy`, "key-alice-0123456789", deployBody("dev", 2))
    expect(res.status).toBe(201)
    // The response headers are here: the outcome must already be in the ledger (invariant 5).
    const records = await app.records()
    const { id, tier } = (await res.json()) as { id: string; tier: number }
    expect(tier).toBe(2)
    const outcome = executions(records, id)
    expect(outcome.map((e) => e.phase)).toEqual(["dispatched", "completed"])
    expect(outcome[1]).toMatchObject({ statusCode: 201, outputDigest: expect.stringMatching(/^[0-9a-f]{64}$/) })
  })

  it("passes a denial to next(err) and errorHandler renders it as problem+json; the handler never runs", async () => {
    const before = calls.deploy
    const res = await post(`${app.url}/deploy`, "key-carol-0123456789", deployBody("dev", 1))
    expect(res.status).toBe(403)
    expect(res.headers.get("content-type")).toBe("application/problem+json; charset=utf-8")
    const problem = (await res.json()) as { reasonCodes: string[]; envelopeId: string; ledgerIndex: number }
    expect(problem.reasonCodes).toEqual(["POLICY_DENY"])
    const stored = await app.governance.envelope(problem.envelopeId)
    expect(stored?.envelope.state).toBe("denied")
    expect(stored?.index).toBe(problem.ledgerIndex)
    expect(calls.deploy).toBe(before)
  })

  it("401 with WWW-Authenticate; client-set identity headers are ignored", async () => {
    const res = await post(`${app.url}/deploy`, undefined, deployBody("dev", 1), {
      "x-user": "bob",
      "x-forwarded-user": "bob"
    })
    expect(res.status).toBe(401)
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/)
    expect(((await res.json()) as { reasonCodes: string[] }).reasonCodes).toEqual(["UNAUTHENTICATED"])
  })

  it("400 for a body that does not decode, 413 over the limit, 400 for malformed JSON", async () => {
    const invalid = await post(`${app.url}/deploy`, "key-alice-0123456789", { scope: { environment: "moon" } })
    expect(invalid.status).toBe(400)
    expect(((await invalid.json()) as { issues: unknown[] }).issues.length).toBeGreaterThan(0)
    const big = await post(`${app.url}/deploy`, "key-alice-0123456789", { pad: "x".repeat(9000) })
    expect(big.status).toBe(413)
    expect(((await big.json()) as { reasonCodes: string[] }).reasonCodes).toEqual(["REQUEST_TOO_LARGE"])
    const malformed = await fetch(`${app.url}/deploy`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer key-alice-0123456789" },
      body: "{"
    })
    expect(malformed.status).toBe(400)
    expect(malformed.headers.get("content-type")).toMatch(/^application\/problem\+json/)
  })

  it("a handler that throws is a recorded failed execution (500)", async () => {
    const res = await post(`${app.url}/deploy?fail=throw`, "key-alice-0123456789", deployBody("dev", 1))
    expect(res.status).toBe(500)
    const records = await app.records()
    const last = records.filter((r) => r.kind === "execution").at(-1)!
    expect(JSON.parse(last.body)).toMatchObject({ phase: "failed", statusCode: 500 })
  })

  it("an outcome the ledger cannot record is never shown: 503 LEDGER_UNAVAILABLE instead of the result", async () => {
    try {
      const res = await post(`${app.url}/deploy?fail=ledger`, "key-alice-0123456789", deployBody("dev", 1))
      expect(res.status).toBe(503)
      const body = (await res.json()) as { reasonCodes: string[]; id?: string }
      expect(body.reasonCodes).toEqual(["LEDGER_UNAVAILABLE"])
      expect(body.id).toBeUndefined()
      // While the ledger cannot record, nothing is admitted and no handler runs.
      const before = calls.deploy
      const refused = await post(`${app.url}/deploy`, "key-alice-0123456789", deployBody("dev", 1))
      expect(refused.status).toBe(503)
      expect(calls.deploy).toBe(before)
    } finally {
      app.ledger.failing = false
    }
    expect((await app.governance.verifyLedger()).ok).toBe(true)
  })

  it("serves a cacheable action from the deterministic cache on repeat, without running the handler", async () => {
    const body = { scope: { environment: "dev" }, input: { text: "  Hello World " } }
    const first = await post(`${app.url}/normalize`, "key-alice-0123456789", body)
    expect(first.status).toBe(200)
    expect(first.headers.get("egl-cache")).toBeNull()
    expect(await first.json()).toEqual({ text: "hello world" })
    const second = await post(`${app.url}/normalize`, "key-alice-0123456789", body)
    expect(second.status).toBe(200)
    expect(second.headers.get("egl-cache")).toBe("hit")
    expect(await second.json()).toEqual({ text: "hello world" })
    expect(calls.normalize).toBe(1)
  })

  it("tier 3 runs one execution at a time (its pool is serialized)", async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, () => post(`${app.url}/deploy`, "key-bob-0123456789", deployBody("prod", 1, true)))
    )
    expect(results.map((r) => r.status)).toEqual([201, 201, 201, 201])
    expect(calls.tier3Max).toBe(1)
  })

  it("a connection closed before the response ended is a recorded failure", async () => {
    const before = calls.deploy
    const req = request(`${app.url}/deploy?hang=1`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer key-alice-0123456789" }
    })
    req.on("error", () => undefined)
    req.end(JSON.stringify(deployBody("dev", 1)))
    while (calls.deploy === before) await new Promise((r) => setTimeout(r, 5))
    const id = (await app.records()).filter((r) => r.kind === "decision").at(-1)!.ref
    req.destroy()
    let outcome: ReadonlyArray<{ phase: string; error?: string }> = []
    for (let i = 0; i < 100 && outcome.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 10))
      outcome = executions(await app.records(), id)
    }
    expect(outcome).toEqual([
      expect.objectContaining({ phase: "dispatched" }),
      expect.objectContaining({ phase: "failed", error: expect.stringMatching(/closed before the response ended/) })
    ])
    // The handler finishing later changes nothing: its response has nowhere to go and is not recorded twice.
    release?.()
    await new Promise((r) => setTimeout(r, 20))
    expect(executions(await app.records(), id)).toHaveLength(2)
  })

  it("validates its setup eagerly", () => {
    expect(() => egl.governed("no-dot")).toThrow(Gate.GateConfigInvalid)
    expect(() => egl.express({} as never)).toThrow(Gate.GateConfigInvalid)
  })

  it("refuses to run a governed route when the app-level middleware is missing", async () => {
    const bare = express()
    let reached = false
    bare.post("/x", egl.governed("serving.deploy_model"), () => void (reached = true))
    bare.use(((err, _req, res, _next) =>
      res.status(500).json({ message: (err as Error).message })) as express.ErrorRequestHandler)
    const server = bare.listen(0, "127.0.0.1")
    await new Promise((r) => server.once("listening", r))
    const port = (server.address() as { port: number }).port
    const res = await fetch(`http://127.0.0.1:${port}/x`, { method: "POST" })
    expect(res.status).toBe(500)
    expect(((await res.json()) as { message: string }).message).toMatch(/app.use\(egl.express/)
    expect(reached).toBe(false)
    server.close()
  })
})
