import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Sealer } from "@egl/core"
import { runAgent, type Row, type Summary } from "../../examples/agent-tools/src/agent.ts"

const row = (summary: Summary, id: string): Row => {
  const found = summary.rows.find((r) => r.id === id)
  if (found === undefined) throw new Error(`no row "${id}" in ${summary.rows.map((r) => r.id).join(", ")}`)
  return found
}

describe("examples/agent-tools: an agent's tool calls across the five execution classes", () => {
  let summary: Summary
  beforeAll(async () => {
    summary = await runAgent()
  })

  it("runs the steps in order, one row each", () => {
    expect(summary.rows.map((r) => r.id)).toEqual([
      "transform.first",
      "transform.repeat",
      "file.read",
      "file.remote.no-reason",
      "file.remote",
      "network.no-reason",
      "network",
      "ai",
      "privileged.no-reason",
      "privileged.non-admin",
      "privileged",
      "privileged.replay"
    ])
    // Every call is the agent acting for a user, and the class is the classifier's.
    for (const r of summary.rows) expect(["alice", "bob"]).toContain(r.onBehalfOf)
  })

  it("transform: executed once, then served from the deterministic cache without running the task", () => {
    expect(row(summary, "transform.first")).toMatchObject({
      executionClass: "transform",
      toolAction: "text.normalize",
      outcome: "executed",
      tier: 0,
      cached: false,
      reasonCodes: ["POLICY_ALLOW"],
      matchedRules: ["agent-workspace"],
      approvedEscalation: undefined
    })
    const repeat = row(summary, "transform.repeat")
    expect(repeat).toMatchObject({
      executionClass: "transform",
      outcome: "served from cache",
      tier: 0,
      cached: true,
      reasonCodes: ["POLICY_ALLOW", "CACHE_HIT"],
      approvedEscalation: undefined
    })
    expect(repeat.output).toEqual(row(summary, "transform.first").output)
    expect(summary.taskRuns["text.normalize"]).toBe(1)
  })

  it("file: a workspace read is admitted at tier 1", () => {
    expect(row(summary, "file.read")).toMatchObject({
      executionClass: "file",
      toolAction: "fs.read_file",
      outcome: "executed",
      tier: 1,
      cached: false,
      reasonCodes: ["POLICY_ALLOW"],
      matchedRules: ["agent-workspace"],
      approvedEscalation: undefined
    })
  })

  it("file → network: a remote read escalates 1 → 2 only with NETWORK_REQUIRED, approved by a rule", () => {
    expect(row(summary, "file.remote.no-reason")).toMatchObject({
      executionClass: "file",
      outcome: "denied",
      reasonCodes: ["ESCALATION_REASON_MISSING"],
      tier: undefined,
      statedReason: undefined,
      approvedEscalation: undefined
    })
    expect(row(summary, "file.remote.no-reason").rationale).toContain("NETWORK_REQUIRED is required")
    const remote = row(summary, "file.remote")
    expect(remote).toMatchObject({
      outcome: "executed",
      tier: 2,
      cached: false,
      statedReason: "NETWORK_REQUIRED",
      reasonCodes: ["POLICY_ALLOW", "ESCALATION_APPROVED"],
      matchedRules: ["agent-egress-with-reason"]
    })
    expect(remote.approvedEscalation).toMatchObject({
      reason: "NETWORK_REQUIRED",
      fromTier: 1,
      toTier: 2,
      capabilities: ["net.egress"],
      approvedBy: "agent-egress-with-reason"
    })
    // The denied read never ran; the admitted ones (workspace and remote) ran once each.
    expect(summary.taskRuns["fs.read_file"]).toBe(2)
  })

  it("network: every fetch escalates 1 → 2: refused without a reason, approved with NETWORK_REQUIRED", () => {
    const missing = row(summary, "network.no-reason")
    expect(missing).toMatchObject({
      executionClass: "network",
      toolAction: "http.fetch",
      outcome: "denied",
      reasonCodes: ["ESCALATION_REASON_MISSING"],
      tier: undefined,
      statedReason: undefined,
      approvedEscalation: undefined
    })
    // The guard names the catalog reason of net.egress.
    expect(missing.rationale).toBe(
      "tier 2 is above the baseline tier 1 of http.fetch: an escalation with reason NETWORK_REQUIRED is required"
    )
    const admitted = row(summary, "network")
    expect(admitted).toMatchObject({
      executionClass: "network",
      outcome: "executed",
      tier: 2,
      cached: false,
      reasonCodes: ["POLICY_ALLOW", "ESCALATION_APPROVED"],
      statedReason: "NETWORK_REQUIRED",
      matchedRules: ["agent-egress-with-reason"],
      output: { status: 200, body: { base: "EUR", rates: { USD: 1.08 } } }
    })
    expect(admitted.approvedEscalation).toEqual({
      reason: "NETWORK_REQUIRED",
      justification: "convert Q3 revenue to USD",
      fromTier: 1,
      toTier: 2,
      capabilities: ["net.egress"],
      approvedBy: "agent-egress-with-reason"
    })
    expect(summary.taskRuns["http.fetch"]).toBe(1)
  })

  it("ai: the agent acting for a user is admitted at tier 2", () => {
    expect(row(summary, "ai")).toMatchObject({
      executionClass: "ai",
      toolAction: "llm.complete",
      onBehalfOf: "alice",
      outcome: "executed",
      tier: 2,
      cached: false,
      reasonCodes: ["POLICY_ALLOW"],
      matchedRules: ["agent-llm"],
      approvedEscalation: undefined
    })
  })

  it("privileged: escalates 2 → 3 only with PRIVILEGED_MUTATION, approved only for an admin, single use", () => {
    const missing = row(summary, "privileged.no-reason")
    expect(missing).toMatchObject({
      executionClass: "privileged",
      toolAction: "k8s.scale",
      onBehalfOf: "bob",
      outcome: "denied",
      reasonCodes: ["ESCALATION_REASON_MISSING"],
      tier: undefined,
      statedReason: undefined,
      approvedEscalation: undefined
    })
    // The catalog reason of both missing capabilities, cluster.scale (the example's) and admin.mutate (core's).
    expect(missing.rationale).toBe(
      "tier 3 is above the baseline tier 2 of k8s.scale: an escalation with reason PRIVILEGED_MUTATION is required"
    )
    const nonAdmin = row(summary, "privileged.non-admin")
    expect(nonAdmin).toMatchObject({
      executionClass: "privileged",
      onBehalfOf: "alice",
      outcome: "denied",
      reasonCodes: ["ESCALATION_NOT_APPROVED"],
      tier: undefined,
      statedReason: "PRIVILEGED_MUTATION",
      matchedRules: [],
      approvedEscalation: undefined
    })
    expect(nonAdmin.rationale).toBe(
      "no rule approves escalation PRIVILEGED_MUTATION to tier 3 for this principal and scope"
    )
    const admitted = row(summary, "privileged")
    expect(admitted).toMatchObject({
      executionClass: "privileged",
      onBehalfOf: "bob",
      outcome: "executed",
      tier: 3,
      cached: false,
      reasonCodes: ["POLICY_ALLOW", "ESCALATION_APPROVED"],
      statedReason: "PRIVILEGED_MUTATION",
      matchedRules: ["agent-privileged-for-admins"],
      output: { deployment: "report-renderer", replicas: 4 }
    })
    expect(admitted.approvedEscalation).toEqual({
      reason: "PRIVILEGED_MUTATION",
      justification: "report rendering backlog",
      fromTier: 2,
      toTier: 3,
      capabilities: ["admin.mutate", "cluster.scale"],
      approvedBy: "agent-privileged-for-admins"
    })
    const replay = row(summary, "privileged.replay")
    expect(replay).toMatchObject({ outcome: "refused", reasonCodes: ["GRANT_REUSED"], tier: 3, cached: false })
    // The same admission, so the same envelope and the same (once-approved) escalation.
    expect(replay.envelopeId).toBe(admitted.envelopeId)
    expect(replay.approvedEscalation).toEqual(admitted.approvedEscalation)
    expect(summary.taskRuns["k8s.scale"]).toBe(1)
  })

  it("every row: exact reason codes, tier and escalation", () => {
    expect(
      summary.rows.map((r) => [
        r.id,
        r.executionClass,
        r.outcome,
        r.reasonCodes.join(","),
        r.tier ?? "-",
        r.approvedEscalation === undefined
          ? "-"
          : `${r.approvedEscalation.reason} ${r.approvedEscalation.fromTier}→${r.approvedEscalation.toTier}`
      ])
    ).toEqual([
      ["transform.first", "transform", "executed", "POLICY_ALLOW", 0, "-"],
      ["transform.repeat", "transform", "served from cache", "POLICY_ALLOW,CACHE_HIT", 0, "-"],
      ["file.read", "file", "executed", "POLICY_ALLOW", 1, "-"],
      ["file.remote.no-reason", "file", "denied", "ESCALATION_REASON_MISSING", "-", "-"],
      ["file.remote", "file", "executed", "POLICY_ALLOW,ESCALATION_APPROVED", 2, "NETWORK_REQUIRED 1→2"],
      ["network.no-reason", "network", "denied", "ESCALATION_REASON_MISSING", "-", "-"],
      ["network", "network", "executed", "POLICY_ALLOW,ESCALATION_APPROVED", 2, "NETWORK_REQUIRED 1→2"],
      ["ai", "ai", "executed", "POLICY_ALLOW", 2, "-"],
      ["privileged.no-reason", "privileged", "denied", "ESCALATION_REASON_MISSING", "-", "-"],
      ["privileged.non-admin", "privileged", "denied", "ESCALATION_NOT_APPROVED", "-", "-"],
      ["privileged", "privileged", "executed", "POLICY_ALLOW,ESCALATION_APPROVED", 3, "PRIVILEGED_MUTATION 2→3"],
      ["privileged.replay", "privileged", "refused", "GRANT_REUSED", 3, "PRIVILEGED_MUTATION 2→3"]
    ])
  })

  it("the ledger verifies", () => {
    expect(summary.ledger).toMatchObject({ ok: true })
    // The policy snapshot, and for each call its decision and (when executed) its outcome.
    expect(summary.ledger.length).toBeGreaterThanOrEqual(summary.rows.length)
  })
})

describe("examples/agent-tools on a file ledger", () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "egl-agent-tools-"))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("appends a second run to the same chain, which still verifies", async () => {
    const file = join(dir, "ledger.jsonl")
    const keys = { privateKeyPem: Sealer.generateKeyPair().privateKeyPem }
    const first = await runAgent({ ledger: { file }, keys })
    const second = await runAgent({ ledger: { file }, keys })
    expect(first.ledger.ok).toBe(true)
    expect(second.ledger.ok).toBe(true)
    expect(second.ledger.length).toBeGreaterThan(first.ledger.length)
    expect(second.rows.map((r) => [r.id, r.outcome, r.reasonCodes])).toEqual(
      first.rows.map((r) => [r.id, r.outcome, r.reasonCodes])
    )
  })
})
