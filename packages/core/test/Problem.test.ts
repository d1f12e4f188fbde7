import { describe, expect, it } from "vitest"
import { createGovernance } from "../src/Governance.ts"
import * as Problem from "../src/Problem.ts"
import { Denied, ServiceFailed } from "../src/Admission.ts"
import { InvalidRequest } from "../src/AdmissionRequest.ts"
import { PolicyUnavailable } from "../src/PolicyEngine.ts"
import { GrantRejected, GrantStoreUnavailable } from "../src/CapabilityGuard.ts"
import { PoolUnavailable } from "../src/IsolationRouter.ts"
import { LedgerUnavailable } from "../src/Ledger.ts"
import { Unauthenticated, IdentityUnavailable } from "../src/Identity.ts"
import { policy, registry } from "./fixtures/scenario.ts"

describe("Problem.fromError", () => {
  it("maps every refusal to its status and reason codes", () => {
    const cases: ReadonlyArray<[Problem.Refusal, number, ReadonlyArray<string>]> = [
      [new InvalidRequest({ detail: "bad", issues: [{ path: "a", message: "m" }] }), 400, ["INVALID_REQUEST"]],
      [new LedgerUnavailable({ detail: "x" }), 503, ["LEDGER_UNAVAILABLE"]],
      [new GrantStoreUnavailable({ detail: "x" }), 503, ["GRANT_STORE_UNAVAILABLE"]],
      [new PoolUnavailable({ tier: 3, pool: "pool-t3", detail: "open breaker" }), 503, ["POOL_UNAVAILABLE"]],
      [new GrantRejected({ code: "GRANT_REUSED", envelopeId: "e1", detail: "used" }), 403, ["GRANT_REUSED"]],
      [new Unauthenticated({ detail: "no key" }), 401, ["UNAUTHENTICATED"]],
      [new IdentityUnavailable({ detail: "secret detail" }), 503, ["IDENTITY_UNAVAILABLE"]]
    ]
    for (const [error, status, codes] of cases) {
      const problem = Problem.fromError(error)
      expect(problem.status, error._tag).toBe(status)
      expect(problem.reasonCodes).toEqual(codes)
      expect(problem.type).toBe(`urn:egl:problem:${codes[0]!.toLowerCase().replaceAll("_", "-")}`)
    }
    expect(
      Problem.fromError(new InvalidRequest({ detail: "bad", issues: [{ path: "a", message: "m" }] })).issues
    ).toEqual([{ path: "a", message: "m" }])
    // The resolver's own words stay in the logs, not in the answer.
    expect(Problem.fromError(new IdentityUnavailable({ detail: "secret detail" })).detail).not.toContain("secret")
  })

  it("a recorded denial is a 403 with its envelope id and ledger index; an unavailable policy a 503", async () => {
    const egl = await createGovernance({ registry, policy })
    try {
      const denied = await egl.admit({
        tool: "serving",
        action: "deploy_model",
        subject: { id: "carol", kind: "user", roles: ["viewer"] },
        scope: { environment: "dev" },
        requested: { resources: { gpus: 1 } }
      })
      expect(denied.ok).toBe(false)
      if (denied.ok) return
      const problem = Problem.fromError(denied.error)
      expect(problem).toMatchObject({
        status: 403,
        title: "Execution denied",
        reasonCodes: ["POLICY_DENY"],
        envelopeId: denied.envelope!.id,
        ledgerIndex: denied.envelope!.ledger!.index
      })
      // A stage that could not answer is not a policy's "no": 503, so the caller may retry.
      for (const reason of [
        new PolicyUnavailable({ detail: "policy store down" }),
        new ServiceFailed({ service: "Attestor", code: "RUNTIME_UNATTESTED", detail: "hung" }),
        new PoolUnavailable({ tier: 2, pool: "pool-t2", detail: "breaker open" })
      ]) {
        expect(Problem.fromError(new Denied({ envelope: denied.envelope!, reason })).status).toBe(503)
      }
    } finally {
      await egl.close()
    }
  })
})
