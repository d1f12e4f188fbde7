/**
 * `governed()` on a real tRPC server over HTTP: the reference scenario (SPEC §11) row by row, identity, invalid input,
 * what the ledger holds per call, a failing resolver, and a ledger that fails while the call runs.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Envelope, Ledger, type GovernanceInstance, type Ledger as LedgerTypes } from "@egl/core"
import { Effect } from "effect"
import { deployInput, startApp, type App, type ErrorBody } from "./fixtures/app.ts"

type Row = {
  readonly name: string
  readonly who: "alice" | "bob" | "carol"
  readonly input: ReturnType<typeof deployInput>
} & (
  | { readonly ok: true; readonly tier: number; readonly codes: ReadonlyArray<string>; readonly replicas?: number }
  | { readonly ok: false; readonly codes: ReadonlyArray<string> }
)

const rows: ReadonlyArray<Row> = [
  {
    name: "alice in dev is admitted at tier 2",
    who: "alice",
    input: deployInput("dev", { gpus: 2 }),
    ok: true,
    tier: 2,
    codes: ["POLICY_ALLOW"]
  },
  {
    name: "alice asking 8 GPUs is RESOURCE_LIMIT_EXCEEDED",
    who: "alice",
    input: deployInput("dev", { gpus: 8 }),
    ok: false,
    codes: ["RESOURCE_LIMIT_EXCEEDED"]
  },
  {
    name: "alice asking 6 replicas is granted 4 (RESOURCE_CLAMPED)",
    who: "alice",
    input: deployInput("staging", { gpus: 1, replicas: 6 }),
    ok: true,
    tier: 2,
    codes: ["POLICY_ALLOW", "RESOURCE_CLAMPED"],
    replicas: 4
  },
  {
    name: "carol (viewer) is POLICY_DENY",
    who: "carol",
    input: deployInput("dev", { gpus: 1 }),
    ok: false,
    codes: ["POLICY_DENY"]
  },
  {
    name: "prod without an escalation is ESCALATION_REASON_MISSING",
    who: "bob",
    input: deployInput("prod", { gpus: 1 }),
    ok: false,
    codes: ["ESCALATION_REASON_MISSING"]
  },
  {
    name: "alice in prod with PRIVILEGED_MUTATION is ESCALATION_NOT_APPROVED",
    who: "alice",
    input: deployInput("prod", { gpus: 1 }, { escalation: true }),
    ok: false,
    codes: ["ESCALATION_NOT_APPROVED"]
  },
  {
    name: "bob in prod with PRIVILEGED_MUTATION is admitted at tier 3",
    who: "bob",
    input: deployInput("prod", { gpus: 8 }, { escalation: true }),
    ok: true,
    tier: 3,
    codes: ["POLICY_ALLOW", "ESCALATION_APPROVED"]
  },
  {
    name: "bob asking 32 GPUs in prod is RESOURCE_LIMIT_EXCEEDED",
    who: "bob",
    input: deployInput("prod", { gpus: 32 }, { escalation: true }),
    ok: false,
    codes: ["RESOURCE_LIMIT_EXCEEDED"]
  },
  {
    name: "restricted data in dev is POLICY_DENY",
    who: "alice",
    input: deployInput("dev", { gpus: 1 }, { dataClassification: "restricted" }),
    ok: false,
    codes: ["POLICY_DENY"]
  }
]

/** Every ledger record, with its body parsed. */
const recordsOf = async (governance: GovernanceInstance) => {
  const stored = await governance.records(0, 100_000)
  return stored
    .filter((r): r is LedgerTypes.LedgerRecord => !Ledger.isCorrupt(r))
    .map((r) => ({ kind: r.kind, ref: r.ref, body: JSON.parse(r.body) as Record<string, unknown> }))
}

/** The execution phases recorded for an envelope, in order. */
const phasesOf = async (governance: GovernanceInstance, envelopeId: string) =>
  (await recordsOf(governance)).filter((r) => r.kind === "execution" && r.ref === envelopeId).map((r) => r.body.phase)

describe("governed(): the reference scenario over tRPC HTTP", () => {
  let app: App
  beforeAll(async () => {
    app = await startApp()
  })
  afterAll(() => app.close())

  it.each(rows)("$name", async (row) => {
    const before = app.calls.deployModel
    const { status, body } = await app.mutate("deployModel", row.input, row.who)
    if (row.ok) {
      expect(status).toBe(200)
      const { envelope, model } = (
        body as { result: { data: { envelope: Envelope.ExecutionEnvelope; model: unknown } } }
      ).result.data
      expect(model).toEqual(row.input.model)
      expect(envelope.state).toBe("admitted")
      expect(envelope.decision.outcome).toBe("admitted")
      expect(envelope.decision.reasonCodes).toEqual(row.codes)
      expect(envelope.granted?.tier).toBe(row.tier)
      expect(envelope.granted?.pool).toBe(`pool-t${row.tier}`)
      expect(envelope.execution.tool).toBe("serving")
      expect(envelope.subject.id).toBe(row.who)
      // requested stays as asked; granted is what policy allows
      expect(envelope.requested.resources).toMatchObject({ replicas: row.input.resources.replicas })
      if (row.replicas !== undefined) expect(envelope.granted?.resources).toMatchObject({ replicas: row.replicas })
      expect(app.calls.deployModel).toBe(before + 1)
      // ctx.envelope is the sealed envelope, as recorded
      const seen = app.envelopes.at(-1)!
      expect(seen.id).toBe(envelope.id)
      expect(Envelope.verifySeal(seen)).toBe(true)
      const stored = await app.governance.envelope(seen.id)
      expect(stored?.envelope.decision.snapshotId).toBe(seen.decision.snapshotId)
      expect(stored?.index).toBe(seen.ledger?.index)
      expect(await phasesOf(app.governance, seen.id)).toEqual(["dispatched", "completed"])
    } else {
      expect(status).toBe(403)
      const { error } = body as unknown as ErrorBody
      expect(error.data.code).toBe("FORBIDDEN")
      expect(error.data.httpStatus).toBe(403)
      expect(error.data.egl?.reasonCodes).toEqual(row.codes)
      expect(error.data.egl?.status).toBe(403)
      expect(error.data.egl?.type).toBe(`urn:egl:problem:${row.codes[0]!.toLowerCase().replaceAll("_", "-")}`)
      expect(error.message.length).toBeGreaterThan(0)
      // The procedure never ran, and the denial is itself recorded, with its envelope id in the error.
      expect(app.calls.deployModel).toBe(before)
      const denied = await app.governance.envelope(error.data.egl!.envelopeId!)
      expect(denied?.envelope.decision.outcome).toBe("denied")
      expect(denied?.envelope.decision.reasonCodes).toEqual(row.codes)
      expect(denied?.index).toBe(error.data.egl?.ledgerIndex)
      expect(await phasesOf(app.governance, denied!.envelope.id)).toEqual([])
    }
  })

  it("without a key, with an unknown key, or with only an X-User header: UNAUTHORIZED, nothing recorded", async () => {
    const before = (await app.governance.head()).size
    const calls = app.calls.deployModel
    const input = deployInput("dev", { gpus: 1 })
    const attempts = [
      await app.mutate("deployModel", input),
      await app.mutate("deployModel", input, undefined, { authorization: "Bearer egl-demo-mallory" }),
      await app.mutate("deployModel", input, undefined, { "x-user": "bob", "x-forwarded-user": "bob" })
    ]
    for (const { status, body } of attempts) {
      expect(status).toBe(401)
      const { error } = body as unknown as ErrorBody
      expect(error.data.code).toBe("UNAUTHORIZED")
      expect(error.data.egl).toMatchObject({ status: 401, reasonCodes: ["UNAUTHENTICATED"] })
    }
    expect(app.calls.deployModel).toBe(calls)
    expect((await app.governance.head()).size).toBe(before)
  })

  it("an invalid input is BAD_REQUEST with its issues by path, before any decision", async () => {
    const before = (await app.governance.head()).size
    const calls = app.calls.deployModel
    for (const [input, path] of [
      [deployInput("dev", { gpus: -1 }), "resources.gpus"],
      [{ ...deployInput("dev", { gpus: 1 }), environment: "moon" }, "environment"],
      ["not an object", ""]
    ] as const) {
      const { status, body } = await app.mutate("deployModel", input, "alice")
      expect(status).toBe(400)
      const { error } = body as unknown as ErrorBody
      expect(error.data.code).toBe("BAD_REQUEST")
      expect(error.data.egl?.reasonCodes).toEqual(["INVALID_REQUEST"])
      expect(error.data.egl?.issues?.[0]).toMatchObject({ path, message: expect.any(String) })
    }
    expect(app.calls.deployModel).toBe(calls)
    expect((await app.governance.head()).size).toBe(before)
  })

  it("with .input() before governed(), tRPC validates first: an invalid input never reaches governance", async () => {
    const before = (await app.governance.head()).size
    const invalid = await app.mutate("deployModelInputFirst", { environment: "moon" }, "alice")
    expect(invalid.status).toBe(400)
    expect((invalid.body as unknown as ErrorBody).error.data.egl).toBeNull()
    expect((await app.governance.head()).size).toBe(before)
    // A valid one is governed the same way.
    const denied = await app.mutate("deployModelInputFirst", deployInput("dev", { gpus: 8 }), "alice")
    expect((denied.body as unknown as ErrorBody).error.data.egl?.reasonCodes).toEqual(["RESOURCE_LIMIT_EXCEEDED"])
    const admitted = await app.mutate("deployModelInputFirst", deployInput("dev", { gpus: 1 }), "alice")
    expect(admitted.status).toBe(200)
    expect(app.calls.deployModelInputFirst).toBe(1)
  })

  it("a resolver that throws is recorded as a failed execution with its status", async () => {
    const { status, body } = await app.mutate("failingDeploy", deployInput("dev", { gpus: 1 }), "alice")
    expect(status).toBe(500)
    expect((body as unknown as ErrorBody).error.data.egl).toBeNull()
    expect(app.calls.failingDeploy).toBe(1)
    const envelope = app.envelopes.at(-1)!
    const executions = (await recordsOf(app.governance)).filter((r) => r.kind === "execution" && r.ref === envelope.id)
    expect(executions.map((r) => r.body.phase)).toEqual(["dispatched", "failed"])
    expect(executions[1]?.body).toMatchObject({ statusCode: 500, error: "the cluster refused the rollout" })
  })

  it("records one decision per attempt, dispatched + completed per admitted call, and the chain verifies", async () => {
    const records = await recordsOf(app.governance)
    const decisions = records.filter((r) => r.kind === "decision")
    const admitted = decisions.filter((d) => (d.body.decision as { outcome: string }).outcome === "admitted")
    // Every SPEC row, the input-first route's denial and admission, and the failing call; 401s and 400s decide nothing.
    expect(decisions).toHaveLength(rows.length + 3)
    expect(admitted).toHaveLength(rows.filter((r) => r.ok).length + 2)
    for (const d of decisions) expect(d.body.execution).toMatchObject({ tool: "serving", action: "deploy_model" })
    for (const d of admitted) {
      const phases = records.filter((r) => r.kind === "execution" && r.ref === d.ref).map((r) => r.body.phase)
      expect(phases[0]).toBe("dispatched")
      expect(["completed", "failed"]).toContain(phases[1])
      expect(phases).toHaveLength(2)
    }
    const report = await app.governance.verifyLedger()
    expect(report.ok).toBe(true)
    expect(report.length).toBe(records.length)
  })
})

describe("governed(): a ledger that fails while the call runs", () => {
  let app: App
  let down = false
  beforeAll(async () => {
    const memory = Ledger.makeMemoryStorage()
    const storage: LedgerTypes.LedgerStorage = {
      ...memory,
      append: (drafts) =>
        down ? Effect.fail(new Ledger.LedgerUnavailable({ detail: "injected: disk full" })) : memory.append(drafts)
    }
    app = await startApp({ ledger: { storage: Effect.succeed(storage) } })
  })
  afterAll(() => app.close())

  it("answers SERVICE_UNAVAILABLE instead of the data when the outcome cannot be recorded", async () => {
    app.hooks.duringCall = () => {
      down = true
    }
    const { status, body } = await app.mutate("deployModel", deployInput("dev", { gpus: 1 }), "alice")
    expect(app.calls.deployModel).toBe(1)
    expect(status).toBe(503)
    const { error } = body as unknown as ErrorBody
    expect(error.data.code).toBe("SERVICE_UNAVAILABLE")
    expect(error.data.egl).toMatchObject({ status: 503, reasonCodes: ["LEDGER_UNAVAILABLE"] })
    expect(JSON.stringify(body)).not.toContain("llama-3-8b")
    // The admission and dispatch were recorded before the failure; the completion was not.
    down = false
    delete app.hooks.duringCall
    expect(await phasesOf(app.governance, app.envelopes[0]!.id)).toEqual(["dispatched"])
  })

  it("while the ledger is down nothing is admitted: SERVICE_UNAVAILABLE and the procedure never runs", async () => {
    down = true
    try {
      const { status, body } = await app.mutate("deployModel", deployInput("dev", { gpus: 1 }), "alice")
      expect(status).toBe(503)
      expect((body as unknown as ErrorBody).error.data.egl?.reasonCodes).toEqual(["LEDGER_UNAVAILABLE"])
      expect(app.calls.deployModel).toBe(1)
    } finally {
      down = false
    }
    expect((await app.governance.verifyLedger()).ok).toBe(true)
  })
})
