/**
 * Incidents the pipeline records beside its decisions: runtime drift and quarantine, and cross-tier fallback.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Attestor, createGovernance, IsolationRouter, Ledger, type GovernanceInstance } from "@egl/core"
import { config } from "./fixtures/runtime.ts"
import { deploy, policy } from "./fixtures/scenario.ts"

const incidents = (egl: GovernanceInstance, id: string) =>
  egl.runtime.runPromise(
    Ledger.Ledger.use((l) =>
      Effect.map(l.history(id), (records) =>
        records.filter((r) => r.kind === "incident").map((r) => JSON.parse(r.body).type)
      )
    )
  )

describe("runtime attestation in the pipeline", () => {
  it("a pinned fingerprint no worker runs, and that is not a known drift, is RUNTIME_DRIFT_BLOCKED with an incident", async () => {
    const egl = await createGovernance(config())
    try {
      const req = deploy("alice", "dev", { gpus: 1, replicas: 1 })
      const result = await egl.admit({
        ...req,
        requested: { ...req.requested, runtime: { fingerprint: "ab".repeat(32) } }
      })
      expect(result.ok).toBe(false)
      expect(result.reasonCodes).toEqual(["RUNTIME_DRIFT_BLOCKED"])
      expect(result.envelope?.runtime.verdict).toBe("blocked")
      expect(await incidents(egl, result.envelope!.id)).toEqual(["RUNTIME_DRIFT_BLOCKED"])
    } finally {
      await egl.close()
    }
  })

  it("pinning the attested fingerprint is an exact match; a quarantined fingerprint serves nothing", async () => {
    const egl = await createGovernance(config())
    try {
      const first = await egl.admit(deploy("alice", "dev", { gpus: 1, replicas: 1 }))
      const fingerprint = first.envelope!.runtime.fingerprint!
      const req = deploy("alice", "dev", { gpus: 1, replicas: 1 })
      const pinned = await egl.admit({ ...req, requested: { ...req.requested, runtime: { fingerprint } } })
      expect(pinned.ok && pinned.envelope.runtime).toMatchObject({ verdict: "exact", fingerprint })
      await egl.runtime.runPromise(Attestor.Attestor.use((a) => a.quarantine(fingerprint, "policy violation")))
      const after = await egl.admit(deploy("alice", "dev", { gpus: 1, replicas: 1 }))
      expect(after.reasonCodes).toEqual(["RUNTIME_QUARANTINED"])
      expect(await incidents(egl, after.envelope!.id)).toEqual(["RUNTIME_QUARANTINED"])
    } finally {
      await egl.close()
    }
  })
})

describe("tier isolation in the pipeline", () => {
  const closeTier2 = (egl: GovernanceInstance) =>
    egl.runtime.runPromise(IsolationRouter.IsolationRouter.use((r) => r.setAvailable("pool-t2", false)))

  it("no cross-tier fallback outside incident mode: POOL_UNAVAILABLE, nothing admitted", async () => {
    const egl = await createGovernance(config())
    try {
      await closeTier2(egl)
      const result = await egl.admit(deploy("alice", "dev", { gpus: 1, replicas: 1 }))
      expect(result.ok).toBe(false)
      expect(result.reasonCodes).toEqual(["POOL_UNAVAILABLE"])
    } finally {
      await egl.close()
    }
  })

  it("incident mode (policy crossTierFallback) routes to the next higher pool, and records it", async () => {
    const egl = await createGovernance(config({ policy: { ...policy, version: "incident", crossTierFallback: true } }))
    try {
      await closeTier2(egl)
      const result = await egl.admit(deploy("alice", "dev", { gpus: 1, replicas: 1 }))
      if (!result.ok) throw new Error(`expected admission, got ${result.reasonCodes}`)
      expect(result.envelope.granted).toMatchObject({ tier: 2, pool: "pool-t3" })
      expect(result.reasonCodes).toContain("CROSS_TIER_FALLBACK")
      expect(await incidents(egl, result.envelope.id)).toEqual(["CROSS_TIER_FALLBACK"])
    } finally {
      await egl.close()
    }
  })
})
