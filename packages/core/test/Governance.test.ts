import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { createGovernance, Sealer } from "@egl/core"
import { config } from "./fixtures/runtime.ts"
import { deploy, policy, registry } from "./fixtures/scenario.ts"

const dir = mkdtempSync(join(tmpdir(), "egl-governance-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const rejection = async (overrides: Record<string, unknown>) => {
  const error = await createGovernance({ ...config(), ...overrides } as never).then(
    async (egl) => {
      await egl.close()
      throw new Error("expected the configuration to be rejected")
    },
    (e: unknown) => e as { _tag: string; message: string }
  )
  return error
}

describe("createGovernance", () => {
  it.each([
    [{ ledger: "postgres" }, "ConfigInvalid", /ledger must be "memory", \{ file \} or \{ storage \}/],
    [{ admissionTimeoutMs: -1 }, "ConfigInvalid", /admissionTimeoutMs must be a positive number/],
    [{ cache: { max: 0 } }, "ConfigInvalid", /cache.max must be a positive number/],
    [
      { policy: { version: "x", rules: [{ id: "r", effect: "deny", tier: 1 }] } },
      "PolicyInvalid",
      /rule "r": "tier" only applies to allow rules/
    ],
    [
      {
        registry: {
          tools: [{ tool: "t", version: "1", stage: "active", actions: { a: { class: "network", tier: 0 } } }]
        }
      },
      "RegistryInvalid",
      /tool "t" action "a"/
    ],
    [
      { keys: { privateKeyPem: "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----" } },
      "SealerUnavailable",
      /invalid signing key/
    ]
  ])("rejects %j with %s, naming what is wrong", async (overrides, tag, message) => {
    const error = await rejection(overrides)
    expect(error._tag).toBe(tag)
    expect(error.message).toMatch(message)
  })

  it("a file ledger outlives the instance: a second instance with the same key continues and verifies the chain", async () => {
    const file = join(dir, "ledger.jsonl")
    const keys = { privateKeyPem: Sealer.generateKeyPair().privateKeyPem }
    const first = await createGovernance({ registry, policy, keys, ledger: { file } })
    const admitted = await first.admit(deploy("alice", "dev", { gpus: 1, replicas: 1 }))
    await first.close()
    const second = await createGovernance({ registry, policy, keys, ledger: { file } })
    try {
      // Same policy: its snapshot is recorded once, not per start.
      const report = await second.verifyLedger()
      expect(report).toMatchObject({ ok: true, length: 2 })
      expect(report.checkpointsVerified).toBeGreaterThanOrEqual(1)
      const stored = await second.envelope(admitted.envelope!.id)
      expect(stored?.envelope.decision.snapshotId).toBe(admitted.envelope!.decision.snapshotId)
      await second.admit(deploy("carol", "dev", { gpus: 1 }))
      expect(await second.verifyLedger()).toMatchObject({ ok: true, length: 3 })
    } finally {
      await second.close()
    }
  })
})
