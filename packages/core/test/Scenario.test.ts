import { describe, expect, it } from "vitest"
import { createGovernance, Envelope, type GovernanceInstance } from "@egl/core"
import { config } from "./fixtures/runtime.ts"
import { deploy } from "./fixtures/scenario.ts"

const withGovernance = async <A>(f: (egl: GovernanceInstance) => Promise<A>) => {
  const egl = await createGovernance(config())
  try {
    return await f(egl)
  } finally {
    await egl.close()
  }
}

describe("reference scenario (SPEC §11) through the Promise facade", () => {
  const rows = [
    {
      name: "viewer may not deploy",
      req: deploy("carol", "dev", { gpus: 1, replicas: 1 }),
      ok: false,
      codes: ["POLICY_DENY"]
    },
    {
      name: "ml-engineer in dev within 4 GPUs",
      req: deploy("alice", "dev", { gpus: 4, replicas: 2 }),
      ok: true,
      codes: ["POLICY_ALLOW"],
      tier: 2
    },
    {
      name: "ml-engineer in staging",
      req: deploy("alice", "staging", { gpus: 1, replicas: 1 }),
      ok: true,
      codes: ["POLICY_ALLOW"],
      tier: 2
    },
    {
      name: "ml-engineer over 4 GPUs",
      req: deploy("alice", "dev", { gpus: 5, replicas: 1 }),
      ok: false,
      codes: ["RESOURCE_LIMIT_EXCEEDED"]
    },
    {
      name: "replicas above 4 are clamped",
      req: deploy("alice", "dev", { gpus: 1, replicas: 9 }),
      ok: true,
      codes: ["POLICY_ALLOW", "RESOURCE_CLAMPED"],
      tier: 2,
      granted: { replicas: 4 }
    },
    {
      name: "prod without escalation",
      req: deploy("alice", "prod", { gpus: 1, replicas: 1 }),
      ok: false,
      codes: ["ESCALATION_REASON_MISSING"]
    },
    {
      name: "prod escalation by ml-engineer",
      req: deploy("alice", "prod", { gpus: 1, replicas: 1 }, { escalation: true }),
      ok: false,
      codes: ["ESCALATION_NOT_APPROVED"]
    },
    {
      name: "prod escalation by ml-admin",
      req: deploy("bob", "prod", { gpus: 16, replicas: 1 }, { escalation: true }),
      ok: true,
      codes: ["POLICY_ALLOW", "ESCALATION_APPROVED"],
      tier: 3
    },
    {
      name: "ml-admin in prod over 16 GPUs",
      req: deploy("bob", "prod", { gpus: 17, replicas: 1 }, { escalation: true }),
      ok: false,
      codes: ["RESOURCE_LIMIT_EXCEEDED"]
    },
    {
      name: "restricted data outside prod",
      req: deploy("alice", "dev", { gpus: 1, replicas: 1 }, { dataClassification: "restricted" }),
      ok: false,
      codes: ["POLICY_DENY"]
    }
  ] as const

  it.each(rows)("$name", async (row) =>
    withGovernance(async (egl) => {
      const result = await egl.admit(row.req)
      expect(result.ok).toBe(row.ok)
      expect(result.reasonCodes).toEqual(row.codes)
      const envelope = result.envelope!
      expect(envelope.state).toBe(row.ok ? "admitted" : "denied")
      expect(Envelope.verifySeal(envelope)).toBe(true)
      // The decision is in the ledger, at the position the envelope names, as sealed.
      const stored = await egl.envelope(envelope.id)
      expect(stored?.index).toBe(envelope.ledger?.index)
      expect(stored?.envelope.decision.snapshotId).toBe(envelope.decision.snapshotId)
      if (row.ok) {
        expect(envelope.granted?.tier).toBe("tier" in row ? row.tier : undefined)
        expect(envelope.granted?.pool).toBe(`pool-t${envelope.granted?.tier}`)
        expect(Date.parse(envelope.granted!.expiresAt)).toBeGreaterThan(Date.now())
        if ("granted" in row) expect(envelope.granted?.resources).toMatchObject(row.granted)
        // requested stays as asked
        expect(envelope.requested.resources).toEqual(row.req.requested?.resources)
      } else {
        expect(envelope.granted).toBeUndefined()
        expect(result.ok === false && result.error._tag).toBe("Denied")
      }
    })
  )

  it("escalated prod grants are single-use and expire within the rule's TTL", () =>
    withGovernance(async (egl) => {
      const result = await egl.admit(deploy("bob", "prod", { gpus: 2, replicas: 1 }, { escalation: true }))
      if (!result.ok) throw new Error("expected admission")
      const ttl = Date.parse(result.envelope.granted!.expiresAt) - Date.parse(result.envelope.decision.decidedAt)
      expect(ttl).toBe(300_000)
      expect(result.envelope.granted?.escalation).toMatchObject({
        reason: "PRIVILEGED_MUTATION",
        fromTier: 2,
        toTier: 3,
        approvedBy: "ml-admin-prod"
      })
      const first = await egl.dispatch(result.envelope)
      const second = await egl.dispatch(result.envelope)
      expect(first.ok).toBe(true)
      expect(second.ok === false && second.error._tag === "GrantRejected" && second.error.code).toBe("GRANT_REUSED")
    }))

  it("records every attempt and the policy snapshot; the chain verifies", () =>
    withGovernance(async (egl) => {
      for (const r of rows) await egl.admit(r.req)
      const report = await egl.verifyLedger()
      expect(report.ok).toBe(true)
      const snapshot = await egl.policySnapshot()
      const { runtime } = egl
      expect(snapshot.id).toMatch(/^[0-9a-f]{64}$/)
      expect(runtime).toBeDefined()
      // one policy record + one decision per attempt + one escalation audit record per escalation attempt
      const escalations = rows.filter((r) => r.req.requested?.escalation !== undefined).length
      expect(escalations).toBe(3)
      expect(report.length).toBe(1 + rows.length + escalations)
    }))

  it("rejects a malformed request with INVALID_REQUEST and records nothing", () =>
    withGovernance(async (egl) => {
      const before = (await egl.verifyLedger()).length
      const result = await egl.admit({
        ...deploy("alice", "dev", { gpus: 1 }),
        scope: { environment: "moon" }
      } as never)
      expect(result.ok).toBe(false)
      expect(result.reasonCodes).toEqual(["INVALID_REQUEST"])
      expect(result.ok === false && result.error._tag === "InvalidRequest" && result.error.issues[0]?.path).toBe(
        "scope.environment"
      )
      const proto = await egl.admit({
        ...deploy("alice", "dev", { gpus: 1 }),
        input: JSON.parse('{"__proto__": {"admin": true}}')
      })
      expect(proto.reasonCodes).toEqual(["INVALID_REQUEST"])
      expect(({} as Record<string, unknown>).admin).toBeUndefined()
      expect((await egl.verifyLedger()).length).toBe(before)
    }))

  it("input that could not be sealed is INVALID_REQUEST at the boundary, never a sealing failure", () =>
    withGovernance(async (egl) => {
      const lone = deploy("bob", "prod", { gpus: 1 }, { escalation: true })
      const cases = [
        {
          ...lone,
          requested: { ...lone.requested, escalation: { reason: "PRIVILEGED_MUTATION", justification: "bad \uD800" } }
        },
        deploy("alice", "dev", { gpus: 2 ** 60 }),
        deploy("alice", "dev", { gpus: 1, gpuType: "a100\uDC00" }),
        { ...deploy("alice", "dev", { gpus: 1 }), scope: { environment: "dev", project: "p\uD800" } }
      ]
      for (const req of cases) {
        const result = await egl.admit(req as never)
        expect(result.reasonCodes).toEqual(["INVALID_REQUEST"])
      }
      expect((await egl.verifyLedger()).length).toBe(1)
    }))

  it("an unknown tool is CLASS_UNKNOWN, never a default allow", () =>
    withGovernance(async (egl) => {
      const result = await egl.admit({ ...deploy("bob", "dev", { gpus: 1 }), tool: "shell", action: "exec" })
      expect(result.ok).toBe(false)
      expect(result.reasonCodes).toEqual(["CLASS_UNKNOWN"])
      expect(result.envelope?.execution.class).toBeUndefined()
    }))

  it("a forged or altered envelope is refused at dispatch", () =>
    withGovernance(async (egl) => {
      const result = await egl.admit(deploy("alice", "dev", { gpus: 1, replicas: 1 }))
      if (!result.ok) throw new Error("expected admission")
      const altered = structuredClone(result.envelope) as { granted: { tier: number } }
      altered.granted.tier = 3
      const refused = await egl.dispatch(altered as never)
      expect(refused.ok === false && refused.error._tag).toBe("EnvelopeRejected")
      // The genuine one still dispatches (the forged attempt did not burn the grant).
      expect((await egl.dispatch(result.envelope)).ok).toBe(true)
    }))

  it("execute runs in the tier pool and records the outcome with its output digest", () =>
    withGovernance(async (egl) => {
      const result = await egl.admit(deploy("alice", "dev", { gpus: 1, replicas: 1 }))
      if (!result.ok) throw new Error("expected admission")
      const run = await egl.execute(result, async (envelope) => ({ deployed: envelope.id }))
      expect(run).toEqual({ ok: true, output: { deployed: result.envelope.id }, cached: false })
      const history = await egl.runtime.runPromise(
        (await import("@egl/core")).Ledger.Ledger.use((l) => l.history(result.envelope.id))
      )
      expect(history.map((r) => [r.kind, JSON.parse(r.body).phase])).toEqual([
        ["decision", undefined],
        ["execution", "dispatched"],
        ["execution", "completed"]
      ])
      const completed = JSON.parse(history[2]!.body)
      expect(completed.outputDigest).toMatch(/^[0-9a-f]{64}$/)
      expect(completed.runtimeFingerprint).toBe(result.envelope.runtime.fingerprint)
      expect(completed.snapshotId).toBe(result.envelope.decision.snapshotId)
    }))
})
