import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createGovernance, type Governance } from "../src/Governance.ts"
import type { LedgerRecord } from "../src/Ledger.ts"
import { deploy, policy, registry } from "./fixtures/scenario.ts"

let egl: Governance
beforeAll(async () => {
  egl = await createGovernance({ registry, policy })
})
afterAll(() => egl.close())

const incidents = async (ref: string) => {
  const { size } = await egl.head()
  return ((await egl.records(0, size)) as ReadonlyArray<LedgerRecord>)
    .filter((r) => r.kind === "incident" && r.ref === ref)
    .map((r) => JSON.parse(r.body) as { type: string; detail: string })
}

const admitted = async () => {
  const result = await egl.admit(deploy("alice", "dev", { gpus: 1 }))
  if (!result.ok) throw new Error("expected an admission")
  return result.envelope
}

describe("dispatch by a worker", () => {
  it("refuses an envelope granted another pool, records the incident, and leaves the grant unused", async () => {
    const envelope = await admitted()
    const wrong = await egl.dispatch(envelope, { pool: "pool-t3" })
    expect(!wrong.ok && wrong.error._tag).toBe("EnvelopeRejected")
    expect(await incidents(envelope.id)).toEqual([
      expect.objectContaining({
        type: "ENVELOPE_INVALID",
        detail: expect.stringMatching(/granted pool-t2, not pool-t3/)
      })
    ])
    const right = await egl.dispatch(envelope, { pool: "pool-t2", worker: "worker-a" })
    expect(right.ok && right.dispatched.worker).toBe("worker-a")
  })

  it("refuses and records a forged envelope and a reused grant", async () => {
    const envelope = await admitted()
    const forged = { ...envelope, granted: { ...envelope.granted!, tier: 3 as const } }
    const refused = await egl.dispatch(forged, { pool: "pool-t2" })
    expect(!refused.ok && refused.error._tag).toBe("EnvelopeRejected")
    expect((await incidents(envelope.id)).map((i) => i.type)).toEqual(["ENVELOPE_INVALID"])
    expect((await egl.dispatch(envelope)).ok).toBe(true)
    const again = await egl.dispatch(envelope)
    expect(!again.ok && again.error._tag === "GrantRejected" && again.error.code).toBe("GRANT_REUSED")
    expect((await incidents(envelope.id)).map((i) => i.type)).toEqual(["ENVELOPE_INVALID", "GRANT_REUSED"])
    expect((await egl.verifyLedger()).ok).toBe(true)
  })
})
