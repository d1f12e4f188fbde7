/**
 * Adapter parity: the same policy and scenario table through Express, NestJS and tRPC gives the same decisions, the
 * same reason codes and the same ledger records (kinds, phases, decisions), because every decision is made in core.
 */
import type { Ledger } from "@egl/core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { serveExpress, serveNest, serveTrpc, type Observed, type Served } from "./servers.ts"

const model = { id: "llama-3-8b", version: "2026.11.1" }
const escalation = { reason: "PRIVILEGED_MUTATION", justification: "release" }
const body = (environment: string, gpus: number, extra: Record<string, unknown> = {}) => ({
  model,
  resources: { gpus, memoryGiB: 40, replicas: 2 },
  environment,
  ...extra
})

/** The scenario: every row of SPEC §11 plus the refusals before admission. */
const scenario: ReadonlyArray<readonly [string, string | undefined, unknown]> = [
  ["carol may not deploy", "egl-demo-carol", body("dev", 1)],
  ["alice in dev", "egl-demo-alice", body("dev", 4)],
  ["alice in staging", "egl-demo-alice", body("staging", 1)],
  ["alice over the GPU cap", "egl-demo-alice", body("dev", 5)],
  [
    "alice's replicas clamped",
    "egl-demo-alice",
    { ...body("dev", 2), resources: { gpus: 2, memoryGiB: 40, replicas: 9 } }
  ],
  ["prod without escalation", "egl-demo-alice", body("prod", 1)],
  ["alice escalates", "egl-demo-alice", body("prod", 1, { escalation })],
  ["bob escalates", "egl-demo-bob", body("prod", 16, { escalation })],
  ["bob over the prod cap", "egl-demo-bob", body("prod", 17, { escalation })],
  ["restricted data in dev", "egl-demo-alice", body("dev", 1, { dataClassification: "restricted" })],
  ["restricted data in prod", "egl-demo-bob", body("prod", 1, { dataClassification: "restricted", escalation })],
  ["no key", undefined, body("dev", 1)],
  ["unknown key", "egl-demo-eve", body("dev", 1)],
  ["invalid body", "egl-demo-alice", { model, resources: { gpus: "many" }, environment: "dev" }],
  ["unknown environment", "egl-demo-alice", body("moon", 1)]
]

/** A ledger record without what differs between instances (ids, times, hashes, digests). */
const normalized = (r: Ledger.LedgerRecord) => {
  const b = JSON.parse(r.body) as Record<string, unknown>
  switch (r.kind) {
    case "decision": {
      const e = b as {
        subject: { id: string }
        state: string
        decision: { outcome: string; reasonCodes: string[]; matchedRules: string[] }
        granted?: { tier: number; resources: unknown; pool: string; escalation?: { reason: string } }
        requested: unknown
        scope: unknown
      }
      return {
        kind: r.kind,
        subject: e.subject.id,
        state: e.state,
        outcome: e.decision.outcome,
        reasonCodes: e.decision.reasonCodes,
        matchedRules: e.decision.matchedRules,
        granted:
          e.granted === undefined
            ? null
            : { tier: e.granted.tier, resources: e.granted.resources, pool: e.granted.pool },
        requested: e.requested,
        scope: e.scope
      }
    }
    case "execution":
      return { kind: r.kind, phase: b["phase"], hasOutputDigest: typeof b["outputDigest"] === "string" }
    case "policy":
      return { kind: r.kind, snapshotId: b["snapshotId"] }
    default:
      return {
        kind: r.kind,
        type: b["type"] ?? null,
        reason: (b["escalation"] as { reason?: string } | undefined)?.reason ?? null
      }
  }
}

const adapters: Array<Served> = []
const observed = new Map<string, Array<Observed>>()

beforeAll(async () => {
  adapters.push(await serveExpress(), await serveNest(), await serveTrpc())
  for (const adapter of adapters) {
    const results: Array<Observed> = []
    for (const [, key, b] of scenario) results.push(await adapter.call(key, b))
    observed.set(adapter.name, results)
  }
}, 60_000)
afterAll(async () => {
  for (const a of adapters) await a.close()
})

describe("Express, NestJS and tRPC", () => {
  it("decide every row alike: outcome, status, reason codes, granted tier and resources", () => {
    const express = observed.get("express")!
    expect(express.filter((o) => o.outcome === "admitted")).toHaveLength(5)
    expect(express.filter((o) => o.outcome === "denied")).toHaveLength(6)
    expect(express.filter((o) => o.outcome === "refused").map((o) => o.status)).toEqual([401, 401, 400, 400])
    for (const name of ["nest", "trpc"]) {
      const other = observed.get(name)!
      scenario.forEach(([row], i) => expect(other[i], `${name}: ${row}`).toEqual(express[i]))
    }
  })

  it("write the same ledger records, and each ledger verifies", async () => {
    const ledgers = await Promise.all(
      adapters.map(async (a) => {
        const { size } = await a.governance.head()
        const records = (await a.governance.records(0, size)) as ReadonlyArray<Ledger.LedgerRecord>
        expect((await a.governance.verifyLedger()).ok, a.name).toBe(true)
        return records.map(normalized)
      })
    )
    // One decision per admission attempt (11), dispatched + completed per admitted request (5), plus the policy and
    // the escalation records.
    expect(ledgers[0]!.filter((r) => r.kind === "decision")).toHaveLength(11)
    expect(ledgers[0]!.filter((r) => r.kind === "execution")).toHaveLength(10)
    expect(ledgers[1]).toEqual(ledgers[0])
    expect(ledgers[2]).toEqual(ledgers[0])
  })
})
