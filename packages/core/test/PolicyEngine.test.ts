import { Effect, Exit, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { Classifier, createGovernance, Ledger, PolicyEngine, Sealer } from "@egl/core"
import { policy, registry } from "./fixtures/scenario.ts"

const run = <A, E>(effect: Effect.Effect<A, E, PolicyEngine.PolicyEngine>, input: unknown = policy) =>
  Effect.runPromiseExit(
    Effect.provide(
      effect,
      PolicyEngine.PolicyEngine.layer(input).pipe(
        Layer.provide(Layer.mergeAll(Sealer.Sealer.layerGenerated, Classifier.Classifier.layer(registry)))
      )
    )
  )

const failureMessage = async (input: unknown) => {
  const exit = await run(
    PolicyEngine.PolicyEngine.use((p) => p.current),
    input
  )
  if (Exit.isSuccess(exit)) throw new Error("expected the policy to be rejected")
  const f = exit.cause.reasons.find((r) => r._tag === "Fail") as { error: { _tag: string; message: string } }
  expect(f.error._tag).toBe("PolicyInvalid")
  return f.error.message
}

describe("PolicyEngine", () => {
  it("snapshot id is the SHA-256 of the canonical policy, stable under key order, signed once", async () => {
    const reordered = JSON.parse(
      JSON.stringify({ rules: policy.rules, version: policy.version, description: policy.description })
    )
    const a = await run(PolicyEngine.PolicyEngine.use((p) => p.current))
    const b = await run(
      PolicyEngine.PolicyEngine.use((p) => p.current),
      reordered
    )
    if (Exit.isFailure(a) || Exit.isFailure(b)) throw new Error("expected snapshots")
    expect(a.value.id).toMatch(/^[0-9a-f]{64}$/)
    expect(b.value.id).toBe(a.value.id)
    expect(a.value.id).toBe(PolicyEngine.snapshotOf(a.value.policy).id)
  })

  it("a policy change yields a new snapshot id and signature that verify with the public key alone", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.gen(function* () {
        const engine = yield* PolicyEngine.PolicyEngine
        const sealer = yield* Sealer.Sealer
        const before = yield* engine.current
        const after = yield* engine.update({ ...policy, version: "demo-2", rules: policy.rules.slice(1) })
        return { before, after, publicKeyPem: sealer.publicKeyPem }
      }).pipe(
        Effect.provide(
          PolicyEngine.PolicyEngine.layer(policy).pipe(
            Layer.provideMerge(Layer.mergeAll(Sealer.Sealer.layerGenerated, Classifier.Classifier.layer(registry)))
          )
        )
      )
    )
    if (Exit.isFailure(exit)) throw new Error("expected update")
    const { before, after, publicKeyPem } = exit.value
    expect(after.id).not.toBe(before.id)
    expect(
      Sealer.verifySignature(publicKeyPem, PolicyEngine.policyMessage(after.id, after.version), after.signature)
    ).toBe(true)
    expect(
      Sealer.verifySignature(publicKeyPem, PolicyEngine.policyMessage(before.id, after.version), after.signature)
    ).toBe(false)
  })

  it("the policy record in the ledger verifies with the public key alone, and not once altered", async () => {
    const egl = await createGovernance({ registry, policy })
    try {
      const snapshot = await egl.policySnapshot()
      const [record] = await egl.runtime.runPromise(Ledger.Ledger.use((l) => l.history(snapshot.id)))
      expect(record?.kind).toBe("policy")
      const recorded = JSON.parse(record!.body) as PolicyEngine.RecordedSnapshot
      expect(PolicyEngine.verifySnapshot(egl.publicKeyPem, recorded)).toBe(true)
      const loosened = structuredClone(recorded) as { policy: { rules: Array<unknown> } }
      loosened.policy.rules.shift()
      expect(PolicyEngine.verifySnapshot(egl.publicKeyPem, loosened as never)).toBe(false)
      expect(PolicyEngine.verifySnapshot(Sealer.generateKeyPair().publicKeyPem, recorded)).toBe(false)
      expect(PolicyEngine.verifySnapshot(egl.publicKeyPem, { ...recorded, version: "other" })).toBe(false)
    } finally {
      await egl.close()
    }
  })

  it.each([
    [
      {
        version: "x",
        rules: [
          { id: "a", effect: "allow" },
          { id: "a", effect: "deny" }
        ]
      },
      /rule "a": the id is used by another rule/
    ],
    [
      { version: "x", rules: [{ id: "no-tier-on-deny", effect: "deny", tier: 2 }] },
      /rule "no-tier-on-deny": "tier" only applies to allow rules/
    ],
    [{ version: "x", rules: [{ id: "req", effect: "require" }] }, /rule "req": a require rule must list/],
    [
      { version: "x", rules: [{ id: "cap", effect: "allow", capabilities: ["warp.drive"] }] },
      /rule "cap": capability "warp.drive" is not in the capability catalog/
    ],
    [
      {
        version: "x",
        rules: [
          { id: "ok", effect: "allow" },
          { id: "bad-tier", effect: "allow", tier: 7 }
        ]
      },
      /rule "bad-tier"/
    ],
    [{ version: "x", rules: [{ id: "bad-effect", effect: "maybe" }] }, /rule "bad-effect"/],
    [
      { version: "x", rules: [{ id: "range", effect: "allow", match: { resources: { gpus: { min: 4, max: 2 } } } }] },
      /rule "range": resource range "gpus" has min above max/
    ],
    [{ version: "x", drift: { default: { allow: "major", windowMs: 1 } }, rules: [] }, /drift/],
    [{ rules: [] }, /version/]
  ])("rejects invalid policy at load with a message naming the rule (%#)", async (input, pattern) => {
    expect(await failureMessage(input)).toMatch(pattern)
  })
})

describe("Classifier", () => {
  const classify = (input: Classifier.ClassifyInput, reg: Classifier.RegistryInput = registry) =>
    Effect.runPromiseExit(
      Effect.provide(
        Classifier.Classifier.use((c) => c.classify(input)),
        Classifier.Classifier.layer(reg)
      )
    )

  it("maps a registered action to its class, baseline tier and capabilities", async () => {
    const exit = await classify({ tool: "serving", action: "deploy_model" })
    expect(Exit.isSuccess(exit) && exit.value).toMatchObject({
      executionClass: "ai",
      baselineTier: 2,
      capabilities: ["gpu.allocate", "model.deploy"]
    })
  })

  it.each([
    [{ tool: "serving", action: "nope" }, "ClassUnknown"],
    [{ tool: "nope", action: "deploy_model" }, "ClassUnknown"],
    [{ tool: "serving", action: "deploy_model", requestedCapabilities: ["warp.drive"] }, "CapabilityUnknown"],
    [{ tool: "serving", action: "deploy_model", requestedCapabilities: ["toString"] }, "CapabilityUnknown"]
  ])("denies %j with %s", async (input, tag) => {
    const exit = await classify(input)
    expect(Exit.isFailure(exit) && (exit.cause.reasons[0] as { error: { _tag: string } }).error._tag).toBe(tag)
  })

  it("derives capabilities from input descriptors and blocks tools in a non-admitting stage", async () => {
    const reg: Classifier.RegistryInput = {
      tools: [
        {
          tool: "fetcher",
          version: "1",
          stage: "active",
          actions: { get: { class: "transform", descriptors: [{ path: "source.url", capability: "net.egress" }] } }
        },
        { tool: "old", version: "1", stage: "deprecated", actions: { run: { class: "transform" } } }
      ]
    }
    const plain = await classify({ tool: "fetcher", action: "get", input: { text: "x" } }, reg)
    const derived = await classify(
      { tool: "fetcher", action: "get", input: { source: { url: "https://example.invalid" } } },
      reg
    )
    expect(Exit.isSuccess(plain) && plain.value.capabilityTier).toBe(0)
    expect(Exit.isSuccess(derived) && derived.value).toMatchObject({
      capabilities: ["net.egress"],
      capabilityTier: 2,
      baselineTier: 0
    })
    const blocked = await classify({ tool: "old", action: "run" }, reg)
    expect(
      Exit.isFailure(blocked) && (blocked.cause.reasons[0] as { error: { _tag: string; stage: string } }).error
    ).toMatchObject({ _tag: "ToolStageBlocked", stage: "deprecated" })
  })

  it.each([
    [
      { tools: [{ tool: "t", version: "1", stage: "active", actions: { a: { class: "network", tier: 1 } } }] },
      /tool "t" action "a": tier 1 is below the floor 2/
    ],
    [
      {
        tools: [{ tool: "t", version: "1", stage: "active", actions: { a: { class: "file", capabilities: ["warp"] } } }]
      },
      /tool "t" action "a": capability "warp"/
    ],
    [
      {
        tools: [
          { tool: "t", version: "1", stage: "active", actions: {} },
          { tool: "t", version: "2", stage: "active", actions: {} }
        ]
      },
      /tool "t" is registered twice/
    ],
    [{ tools: [{ tool: "Bad Slug", version: "1", stage: "active", actions: {} }] }, /tool "Bad Slug"/]
  ])("rejects an invalid registry naming the tool (%#)", async (reg, pattern) => {
    const exit = await Effect.runPromiseExit(
      Effect.provide(
        Classifier.Classifier.use((c) => Effect.succeed(c.tools)),
        Classifier.Classifier.layer(reg as never)
      )
    )
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect((exit.cause.reasons[0] as { error: Error }).error.message).toMatch(pattern)
  })
})
