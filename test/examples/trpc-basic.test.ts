import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createTRPCClient, httpLink, isTRPCClientError } from "@trpc/client"
import { createServer, type AppRouter, type RunningServer } from "../../examples/trpc-basic/src/server.ts"

describe("examples/trpc-basic: a governed tRPC mutation called with @trpc/client", () => {
  let running: RunningServer
  beforeAll(async () => {
    running = await (await createServer()).listen(0)
  })
  afterAll(() => running.close())

  const clientAs = (apiKey: string) =>
    createTRPCClient<AppRouter>({
      links: [httpLink({ url: running.url, headers: { authorization: `Bearer ${apiKey}` } })]
    })
  const input = {
    model: { id: "llama-3-8b", version: "2026.11.1" },
    environment: "dev",
    resources: { gpus: 2, replicas: 6 }
  } as const

  it("admits alice at tier 2 with replicas clamped to 4, and runs the mutation", async () => {
    const result = await clientAs("egl-demo-alice").deployModel.mutate(input)
    expect(result).toMatchObject({
      deployment: "llama-3-8b@2026.11.1",
      tier: 2,
      granted: { gpus: 2, replicas: 4 },
      reasonCodes: ["POLICY_ALLOW", "RESOURCE_CLAMPED"]
    })
    const stored = await running.governance.envelope(result.envelopeId)
    expect(stored?.index).toBe(result.ledgerIndex)
    expect(stored?.envelope.subject.id).toBe("alice")
  })

  it("denies carol with FORBIDDEN and POLICY_DENY in error.data.egl; the denial is recorded", async () => {
    const error = await clientAs("egl-demo-carol")
      .deployModel.mutate(input)
      .catch((e: unknown) => e)
    expect(isTRPCClientError<AppRouter>(error)).toBe(true)
    if (!isTRPCClientError<AppRouter>(error)) return
    expect(error.data?.code).toBe("FORBIDDEN")
    expect(error.data?.httpStatus).toBe(403)
    expect(error.data?.egl?.reasonCodes).toEqual(["POLICY_DENY"])
    const denied = await running.governance.envelope(error.data!.egl!.envelopeId!)
    expect(denied?.envelope.decision).toMatchObject({ outcome: "denied", reasonCodes: ["POLICY_DENY"] })
    expect((await running.governance.verifyLedger()).ok).toBe(true)
  })
})
