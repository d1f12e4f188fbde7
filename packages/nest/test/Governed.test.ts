/**
 * The reference scenario (SPEC §11) through a real Nest application: every row of the contract over HTTP, the problem
 * bodies, and the ledger behind them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { GovernanceInstance } from "@egl/core"
import { EglModule } from "@egl/nest"
import {
  appModule,
  deployBody,
  demoGovernance,
  demoIdentity,
  ledgerOf,
  listen,
  phasesOf,
  post,
  type Running
} from "./fixtures/servingApp.ts"

const DEPLOY = "/serving/deploy_model"

let governance: GovernanceInstance
let running: Running

beforeAll(async () => {
  governance = await demoGovernance()
  running = await listen(appModule(EglModule.forRoot({ governance, identity: demoIdentity() })))
})
afterAll(async () => {
  await running?.close()
  await governance?.close()
})

const deploy = (body: unknown, who?: "alice" | "bob" | "carol", headers?: Record<string, string>) =>
  post(running.url, DEPLOY, body, who, headers)

/** Sends, checks the problem's status and media type, and checks that the handler did not run. */
const refused = async (response: Promise<Response>, status: number) => {
  const before = running.calls.count
  const res = await response
  const problem = (await res.json()) as Record<string, unknown>
  expect(res.status).toBe(status)
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/)
  expect(problem).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) })
  expect(problem["type"]).toMatch(/^urn:egl:problem:/)
  expect(Array.isArray(problem["reasonCodes"])).toBe(true)
  // Exactly the problem body: none of Nest's own `{ statusCode, message }` members.
  expect(problem).not.toHaveProperty("statusCode")
  expect(problem).not.toHaveProperty("message")
  expect(running.calls.count).toBe(before)
  return problem
}

/** Sends, checks the `201 { envelope }` answer and that the handler ran once. */
const admitted = async (response: Promise<Response>) => {
  const before = running.calls.count
  const res = await response
  expect(res.status).toBe(201)
  expect(res.headers.get("content-type")).toMatch(/^application\/json/)
  const { envelope } = (await res.json()) as { envelope: any }
  expect(running.calls.count).toBe(before + 1)
  expect(envelope).toMatchObject({
    id: expect.any(String),
    state: "admitted",
    requested: expect.any(Object),
    granted: { tier: expect.any(Number), resources: expect.any(Object), pool: expect.any(String) },
    decision: {
      outcome: "admitted",
      reasonCodes: expect.any(Array),
      policySnapshotId: expect.any(String),
      snapshotId: expect.any(String)
    },
    ledger: { index: expect.any(Number), hash: expect.any(String) }
  })
  expect(Date.parse(envelope.granted.expiresAt)).toBeGreaterThan(Date.now())
  return envelope
}

/** A recorded denial: its envelope is in the ledger, denied, with the problem's reason codes. */
const recordedDenial = async (problem: Record<string, unknown>, code: string) => {
  expect(problem["reasonCodes"]).toContain(code)
  expect(problem["envelopeId"]).toEqual(expect.any(String))
  const stored = await governance.envelope(problem["envelopeId"] as string)
  expect(stored?.envelope.decision).toMatchObject({ outcome: "denied" })
  expect(stored?.envelope.decision.reasonCodes).toContain(code)
  expect(await phasesOf(governance, problem["envelopeId"] as string)).toEqual([])
}

describe("POST /serving/deploy_model, governed by @Governed(ACTION, deployModelRoute)", () => {
  it("admits alice in dev at tier 2: 201 { envelope }, dispatched and completed in the ledger", async () => {
    const envelope = await admitted(deploy(deployBody("dev", { gpus: 2, replicas: 1 }), "alice"))
    expect(envelope.subject).toMatchObject({ id: "alice" })
    expect(envelope.granted).toMatchObject({ tier: 2, resources: { gpus: 2, replicas: 1 } })
    const phases = await phasesOf(governance, envelope.id)
    expect(phases.map((p) => p["phase"])).toEqual(["dispatched", "completed"])
    expect(phases[1]).toMatchObject({ statusCode: 201, outputDigest: expect.stringMatching(/^[0-9a-f]{64}$/) })
    const decision = (await ledgerOf(governance)).find((r) => r.kind === "decision" && r.ref === envelope.id)
    expect(decision?.index).toBe(envelope.ledger.index)
  })

  it("denies alice 8 GPUs: 403 RESOURCE_LIMIT_EXCEEDED, recorded", async () => {
    const problem = await refused(deploy(deployBody("dev", { gpus: 8, replicas: 1 }), "alice"), 403)
    await recordedDenial(problem, "RESOURCE_LIMIT_EXCEEDED")
    expect(problem["ledgerIndex"]).toEqual(expect.any(Number))
  })

  it("grants alice 4 of 6 replicas, requested stays 6, with RESOURCE_CLAMPED", async () => {
    const envelope = await admitted(deploy(deployBody("staging", { gpus: 1, replicas: 6 }), "alice"))
    expect(envelope.granted).toMatchObject({ tier: 2, resources: { replicas: 4 } })
    expect(envelope.requested.resources).toMatchObject({ replicas: 6 })
    expect(envelope.decision.reasonCodes).toContain("RESOURCE_CLAMPED")
  })

  it("denies carol (viewer): 403 POLICY_DENY", async () => {
    await recordedDenial(
      await refused(deploy(deployBody("dev", { gpus: 1, replicas: 1 }), "carol"), 403),
      "POLICY_DENY"
    )
  })

  it("denies prod without an escalation: 403 ESCALATION_REASON_MISSING", async () => {
    const problem = await refused(deploy(deployBody("prod", { gpus: 2, replicas: 1 }), "bob"), 403)
    await recordedDenial(problem, "ESCALATION_REASON_MISSING")
  })

  it("denies alice's PRIVILEGED_MUTATION in prod: 403 ESCALATION_NOT_APPROVED", async () => {
    const body = deployBody("prod", { gpus: 2, replicas: 1 }, { escalation: true })
    await recordedDenial(await refused(deploy(body, "alice"), 403), "ESCALATION_NOT_APPROVED")
  })

  it("admits bob in prod with PRIVILEGED_MUTATION at tier 3", async () => {
    const envelope = await admitted(deploy(deployBody("prod", { gpus: 8, replicas: 2 }, { escalation: true }), "bob"))
    expect(envelope.granted).toMatchObject({ tier: 3, resources: { gpus: 8 } })
    expect(envelope.granted.escalation).toMatchObject({ reason: "PRIVILEGED_MUTATION" })
    expect((await phasesOf(governance, envelope.id)).map((p) => p["phase"])).toEqual(["dispatched", "completed"])
  })

  it("denies bob 32 GPUs in prod: 403 RESOURCE_LIMIT_EXCEEDED", async () => {
    const body = deployBody("prod", { gpus: 32, replicas: 1 }, { escalation: true })
    await recordedDenial(await refused(deploy(body, "bob"), 403), "RESOURCE_LIMIT_EXCEEDED")
  })

  it("denies restricted data outside prod: 403 POLICY_DENY", async () => {
    const body = deployBody("dev", { gpus: 1, replicas: 1 }, { dataClassification: "restricted" })
    await recordedDenial(await refused(deploy(body, "alice"), 403), "POLICY_DENY")
  })

  it("answers 401 without a key, with an unknown key, and for a client-set X-User header", async () => {
    const body = deployBody("dev", { gpus: 1, replicas: 1 })
    for (const response of [
      deploy(body),
      deploy(body, undefined, { authorization: "Bearer egl-demo-mallory" }),
      deploy(body, undefined, { "x-user": "bob", "x-forwarded-user": "bob" })
    ]) {
      const res = await response
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="egl"')
      const problem = await refused(Promise.resolve(res), 401)
      expect(problem).toMatchObject({ reasonCodes: ["UNAUTHENTICATED"], type: "urn:egl:problem:unauthenticated" })
      expect(problem).not.toHaveProperty("envelopeId")
    }
  })

  it("answers 400 INVALID_REQUEST with the issues for a body that does not decode", async () => {
    const problem = await refused(
      deploy({ model: { id: "m" }, resources: { gpus: 1, memoryGiB: 1, replicas: 1 }, environment: "dev" }, "alice"),
      400
    )
    expect(problem).toMatchObject({ reasonCodes: ["INVALID_REQUEST"], type: "urn:egl:problem:invalid-request" })
    expect(problem["issues"]).toEqual([{ path: "model.version", message: expect.any(String) }])
  })

  it("answers 400 INVALID_REQUEST for malformed JSON (through the global EglProblemFilter)", async () => {
    const problem = await refused(deploy('{"model": {', "alice"), 400)
    expect(problem).toMatchObject({ reasonCodes: ["INVALID_REQUEST"], type: "urn:egl:problem:invalid-request" })
  })

  it("answers 413 REQUEST_TOO_LARGE for a body over the parser's limit (Nest's default, 100 kB)", async () => {
    const body = { ...deployBody("dev", { gpus: 1, replicas: 1 }), padding: "x".repeat(200_000) }
    const problem = await refused(deploy(body, "alice"), 413)
    expect(problem).toMatchObject({ reasonCodes: ["REQUEST_TOO_LARGE"], type: "urn:egl:problem:request-too-large" })
    expect(problem["detail"]).toContain("102400")
  })

  it("has a decision record per admission attempt and two execution records per admitted request; the ledger verifies", async () => {
    const records = await ledgerOf(governance)
    const outcomes: Array<string | undefined> = []
    for (const record of records.filter((r) => r.kind === "decision")) {
      const outcome = (await governance.envelope(record.ref))?.envelope.decision.outcome
      outcomes.push(outcome)
      const phases = (await phasesOf(governance, record.ref)).map((p) => p["phase"])
      expect(phases).toEqual(outcome === "admitted" ? ["dispatched", "completed"] : [])
    }
    // The 3 admissions and 6 recorded denials above; 401 / 400 / 413 never reach admission.
    expect(outcomes.sort()).toEqual([...Array(3).fill("admitted"), ...Array(6).fill("denied")])
    const report = await governance.verifyLedger()
    expect(report).toMatchObject({ ok: true, length: records.length })
  })
})
