import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { createGovernance, PolicyEngine } from "@egl/core"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { policy, registry } from "../../../examples/quickstart/src/scenario.ts"
import { egl, eglJson, keys, privateKeyFile, publicKeyFile, tempDir } from "./support/ledgers.ts"

const dir = tempDir("policy")
const policyFile = join(dir, "policy.json")
writeFileSync(policyFile, JSON.stringify(policy, null, 2))

const count = (effect: string) => policy.rules.filter((r) => r.effect === effect).length

const write = (name: string, content: string) => {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

describe("egl policy snapshot", () => {
  it("prints the snapshot id the policy engine computes, the version and the rules", async () => {
    const expected = PolicyEngine.snapshotOf(Effect.runSync(PolicyEngine.decode(policy))).id
    const { code, json } = await eglJson("policy", "snapshot", policyFile)
    expect(code).toBe(0)
    expect(json).toEqual({
      ok: true,
      file: policyFile,
      snapshotId: expected,
      version: "demo-2026-11-01",
      rules: { total: policy.rules.length, allow: count("allow"), deny: count("deny"), require: count("require") }
    })
    // Key order and whitespace are not part of the content: the id is the same.
    const { rules, ...rest } = policy
    const reordered = write("reordered.json", JSON.stringify({ rules, ...rest }))
    expect((await eglJson("policy", "snapshot", reordered)).json["snapshotId"]).toBe(expected)

    const human = await egl("policy", "snapshot", policyFile)
    expect(human.code).toBe(0)
    expect(human.out).toMatch(new RegExp(`^${expected}\\n`))
    expect(human.out).toMatch(
      new RegExp(`rules\\s+${policy.rules.length} \\(${count("allow")} allow, ${count("deny")} deny, 1 require\\)`)
    )
  })

  it("with --key signs the snapshot exactly as the running policy engine does", async () => {
    const { code, json } = await eglJson("policy", "snapshot", policyFile, "--key", privateKeyFile)
    expect(code).toBe(0)
    const governance = await createGovernance({ registry, policy, keys })
    try {
      const running = await governance.policySnapshot()
      expect(json["snapshotId"]).toBe(running.id)
      expect(json["signature"]).toEqual({
        keyId: running.keyId,
        signature: running.signature,
        publicKeyPem: keys.publicKeyPem
      })
    } finally {
      await governance.close()
    }
    expect(
      PolicyEngine.verifySnapshot(keys.publicKeyPem, {
        snapshotId: json["snapshotId"],
        version: json["version"],
        signature: json["signature"].signature,
        policy
      })
    ).toBe(true)
    const human = await egl("policy", "snapshot", policyFile, "--key", privateKeyFile)
    expect(human.out).not.toContain("PRIVATE KEY")
    expect(human.out).toMatch(/signature\s+[A-Za-z0-9+/]+=*\n/)
  })

  it("rejects an invalid policy with a message that names the rule (exit 2)", async () => {
    const badTier = write(
      "bad-tier.json",
      JSON.stringify({
        version: "1",
        rules: [
          { id: "ok-rule", effect: "deny" },
          { id: "gpu-cap", effect: "allow", tier: 9 }
        ]
      })
    )
    const human = await egl("policy", "snapshot", badTier)
    expect(human.code).toBe(2)
    expect(human.out).toBe("")
    expect(human.err).toMatch(/^egl policy snapshot: invalid policy: rule "gpu-cap": /)

    const duplicate = write(
      "duplicate.json",
      JSON.stringify({
        version: "1",
        rules: [
          { id: "same", effect: "deny" },
          { id: "same", effect: "deny" }
        ]
      })
    )
    const json = await eglJson("policy", "snapshot", duplicate)
    expect(json).toEqual({
      code: 2,
      json: {
        ok: false,
        error: { code: "invalid-input", message: 'invalid policy: rule "same": the id is used by another rule' }
      }
    })
  })

  it("rejects invalid JSON (exit 2), a missing file (exit 3) and a key that is not an Ed25519 private key (exit 2)", async () => {
    const notJson = write("not.json", "{ version: 1 ")
    const invalid = await egl("policy", "snapshot", notJson)
    expect(invalid.code).toBe(2)
    expect(invalid.err).toMatch(/policy file .*not\.json is not valid JSON/)

    const missing = await eglJson("policy", "snapshot", join(dir, "absent.json"))
    expect(missing).toMatchObject({ code: 3, json: { ok: false, error: { code: "cannot-open" } } })

    const wrongKey = await eglJson("policy", "snapshot", policyFile, "--key", publicKeyFile)
    expect(wrongKey).toMatchObject({ code: 2, json: { ok: false, error: { code: "invalid-input" } } })
    expect(wrongKey.json["error"].message).toMatch(/^key file .*egl\.pub: invalid signing key/)
  })
})
