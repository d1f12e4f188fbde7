/**
 * The six invariants of SPEC §3, as properties over generated tools, policies and requests (≥ 10 000 admissions):
 * 100 generated worlds (registry + policy) × 100 generated requests each.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  Canonical,
  Capability,
  createGovernance,
  Envelope,
  ExecutionClass,
  type AdmissionRequest,
  type Classifier,
  type PolicyEngine
} from "@egl/core"

const CLASSES = ["transform", "file", "network", "ai", "privileged"] as const
const ROLES = ["r1", "r2", "r3", "r4"] as const
const ENVS = ["dev", "staging", "prod"] as const
const CAPS = Object.keys(Capability.defaultCatalog)
const REASONS = [
  "FILE_ACCESS_REQUIRED",
  "NETWORK_REQUIRED",
  "AI_PROVIDER_REQUIRED",
  "SECRET_REQUIRED",
  "PRIVILEGED_MUTATION",
  "BOGUS_REASON"
] as const
const STAGES = ["active", "active", "active", "canary", "restricted", "deprecated"] as const
const tier = fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<ExecutionClass.Tier>
const subset = <T>(xs: ReadonlyArray<T>) => fc.subarray([...xs], { minLength: 1 })

const actionArb = fc.record({
  class: fc.constantFrom(...CLASSES),
  bump: fc.constantFrom(0, 0, 1),
  capabilities: fc.oneof(fc.constant([]), fc.subarray(CAPS, { maxLength: 2 })),
  cacheable: fc.option(fc.boolean(), { nil: undefined }),
  stage: fc.option(fc.constantFrom(...STAGES), { nil: undefined, freq: 6 })
})

const registryArb = fc
  .array(
    fc.record({ stage: fc.constantFrom(...STAGES), actions: fc.array(actionArb, { minLength: 1, maxLength: 3 }) }),
    { minLength: 1, maxLength: 3 }
  )
  .map((tools) => ({
    tools: tools.map((t, i) => ({
      tool: `tool${i}`,
      version: "1.0.0",
      stage: t.stage,
      actions: Object.fromEntries(
        t.actions.map((a, j) => {
          const floor = ExecutionClass.defaultClassProfiles[a.class].floor
          const def: Record<string, unknown> = { class: a.class, capabilities: a.capabilities }
          if (a.bump > 0 && floor < 3) def.tier = floor + 1
          if (a.cacheable !== undefined) def.cacheable = a.cacheable
          if (a.stage !== undefined) def.stage = a.stage
          return [`act${j}`, def]
        })
      )
    }))
  })) as unknown as fc.Arbitrary<Classifier.RegistryInput>

// Rules match on zero to two fields, so that generated policies admit a fair share of requests.
const narrowMatchArb = fc.oneof(
  { weight: 1, arbitrary: fc.record({ roles: subset(ROLES) }) },
  { weight: 1, arbitrary: fc.record({ environments: subset(ENVS) }) },
  { weight: 1, arbitrary: fc.record({ classes: subset(CLASSES), tools: subset(["tool0", "tool1", "tool2"]) }) },
  { weight: 1, arbitrary: fc.record({ escalationReasons: subset(REASONS.slice(0, 5)) }) },
  {
    weight: 1,
    arbitrary: fc.record({ resources: fc.record({ gpus: fc.record({ max: fc.integer({ min: 0, max: 12 }) }) }) })
  }
)
const matchArb = fc.oneof({ weight: 1, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: narrowMatchArb })

const ruleArb = fc.oneof(
  { weight: 1, arbitrary: fc.record({ effect: fc.constant("deny" as const), match: narrowMatchArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      effect: fc.constant("require" as const),
      match: narrowMatchArb,
      capabilities: fc.subarray(CAPS, { minLength: 1, maxLength: 2 })
    })
  },
  {
    weight: 5,
    arbitrary: fc.record(
      {
        effect: fc.constant("allow" as const),
        match: matchArb,
        tier,
        capabilities: fc.subarray(CAPS, { minLength: 1 }),
        resources: fc.record(
          {
            gpus: fc.record({
              max: fc.integer({ min: 0, max: 10 }),
              onExceed: fc.constantFrom("deny" as const, "clamp" as const)
            }),
            replicas: fc.record({
              max: fc.integer({ min: 0, max: 6 }),
              onExceed: fc.constantFrom("deny" as const, "clamp" as const)
            })
          },
          { requiredKeys: [] }
        ),
        escalation: fc.record({ approve: subset(REASONS.slice(0, 5)) }),
        grant: fc.record({ ttlSeconds: fc.integer({ min: 1, max: 600 }) })
      },
      { requiredKeys: ["effect", "match"] }
    )
  }
)

// Half the policies end with a broad rule that approves every escalation, so the escalation path is exercised often.
const broad = {
  effect: "allow" as const,
  match: { escalationReasons: [...REASONS.slice(0, 5)] },
  tier: 3 as const,
  escalation: { approve: [...REASONS.slice(0, 5)] }
}
const policyArb: fc.Arbitrary<PolicyEngine.PolicyInput> = fc
  .tuple(fc.array(ruleArb, { minLength: 1, maxLength: 8 }), fc.boolean())
  .map(([rules, withBroad]) => ({
    version: "generated",
    rules: [...rules, ...(withBroad ? [broad] : [])].map((r, i) => ({ id: `rule${i}`, ...r }))
  }))

const requestArb: fc.Arbitrary<AdmissionRequest.AdmissionRequestInput> = fc.record({
  tool: fc.constantFrom("tool0", "tool1", "tool2", "nope"),
  action: fc.constantFrom("act0", "act1", "act2"),
  subject: fc.record({
    id: fc.constantFrom("u1", "u2"),
    kind: fc.constantFrom("user" as const, "agent" as const),
    roles: fc.subarray([...ROLES])
  }),
  scope: fc.record({ environment: fc.constantFrom(...ENVS) }),
  input: fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof Canonical.toCanonicalJsonOrError(v) === "string"),
  requested: fc.record(
    {
      tier,
      capabilities: fc.subarray(CAPS, { maxLength: 2 }),
      resources: fc.record(
        {
          gpus: fc.integer({ min: 0, max: 14 }),
          replicas: fc.integer({ min: 0, max: 9 }),
          gpuType: fc.constantFrom("a100", "h100")
        },
        { requiredKeys: [] }
      ),
      escalation: fc.record({ reason: fc.constantFrom(...REASONS), justification: fc.string({ maxLength: 20 }) })
    },
    { requiredKeys: [] }
  )
})

// Inputs the strict profile rejects (forbidden keys, unsafe integers) are INVALID_REQUEST; Canonical.test.ts covers them.

const mutate = (envelope: Envelope.ExecutionEnvelope): Envelope.ExecutionEnvelope => {
  const copy = structuredClone(envelope) as unknown as { subject: { roles: Array<string> } }
  copy.subject.roles.push("intruder")
  return copy as unknown as Envelope.ExecutionEnvelope
}

describe("SPEC §3 invariants", () => {
  it("hold for every generated world and request", { timeout: 240_000 }, async () => {
    let admissions = 0
    let admitted = 0
    let escalated = 0
    const codes = new Map<string, number>()
    await fc.assert(
      fc.asyncProperty(
        registryArb,
        policyArb,
        fc.array(requestArb, { minLength: 100, maxLength: 100 }),
        async (registry, policy, requests) => {
          const egl = await createGovernance({
            registry,
            policy,
            ledger: "memory",
            ledgerOptions: { checkpointIntervalMs: 0 }
          })
          try {
            const catalog = Capability.defaultCatalog
            for (const [i, generated] of requests.entries()) {
              // Point most requests at a registered action (the rest stay unknown: CLASS_UNKNOWN).
              const tool = registry.tools[i % registry.tools.length]!
              const actions = Object.keys(tool.actions)
              const req =
                generated.tool === "nope"
                  ? generated
                  : { ...generated, tool: tool.tool, action: actions[i % actions.length]! }
              const result = await egl.admit(req)
              admissions++
              if (!result.ok && result.error._tag !== "Denied")
                throw new Error(`unexpected ${result.error._tag}: ${result.error.message}`)
              const env = result.envelope!
              // (4) sealed envelopes never change: digest stable under re-serialization, any mutation detectable.
              expect(Envelope.verifySeal(env)).toBe(true)
              expect(Envelope.verifySeal(JSON.parse(JSON.stringify(env)))).toBe(true)
              expect(Envelope.verifySeal(mutate(env))).toBe(false)
              // (5) the decision is in the ledger before the caller sees it, exactly as sealed.
              const stored = await egl.envelope(env.id)
              expect(stored?.envelope.decision.snapshotId).toBe(env.decision.snapshotId)
              expect(stored?.index).toBe(env.ledger?.index)
              if (!result.ok) {
                codes.set(result.reasonCodes[0]!, (codes.get(result.reasonCodes[0]!) ?? 0) + 1)
                expect(env.granted).toBeUndefined()
                continue
              }
              admitted++
              const granted = env.granted!
              const toolDef = registry.tools.find((t) => t.tool === req.tool)!
              const action = toolDef.actions[req.action]!
              const baseline = (action.tier ?? ExecutionClass.defaultClassProfiles[action.class].floor) as number
              const approving = policy.rules.find(
                (r) => r.id === env.decision.matchedRules[env.decision.matchedRules.length - 1]
              )!
              // (1) no grant exceeds what the approving rule approves; never below the baseline.
              expect(approving.effect).toBe("allow")
              expect(granted.tier).toBeLessThanOrEqual((approving.tier ?? baseline) as number)
              expect(granted.tier).toBeGreaterThanOrEqual(baseline)
              // (2) above the baseline only with a reason naming a missing capability, approved by that rule.
              if (granted.tier > baseline) {
                escalated++
                const e = granted.escalation!
                expect(e.reason).toBe(req.requested?.escalation?.reason)
                expect(e.approvedBy).toBe(approving.id)
                expect(approving.escalation?.approve).toContain(e.reason)
                const named =
                  e.capabilities.length > 0
                    ? e.capabilities.some((c) => catalog[c]?.reason === e.reason)
                    : Object.values(catalog).some((s) => s.reason === e.reason && s.tier > baseline)
                expect(named).toBe(true)
              } else {
                expect(granted.escalation).toBeUndefined()
              }
              // (3) capabilities ⊆ requested ∪ escalation; resources ≤ requested per field.
              const allowed = new Set([...env.requested.capabilities, ...(granted.escalation?.capabilities ?? [])])
              for (const c of granted.capabilities) expect(allowed.has(c)).toBe(true)
              for (const c of req.requested?.capabilities ?? []) expect(env.requested.capabilities).toContain(c)
              const asked = req.requested?.resources ?? {}
              expect(Object.keys(granted.resources).sort()).toEqual(Object.keys(asked).sort())
              for (const [k, v] of Object.entries(granted.resources)) {
                if (typeof v === "number") expect(v).toBeLessThanOrEqual(asked[k] as number)
                else expect(v).toBe(asked[k])
              }
              // (6) a grant is used at most once, even under concurrency.
              const uses = await Promise.all([egl.dispatch(env), egl.dispatch(env)])
              expect(uses.filter((u) => u.ok)).toHaveLength(1)
            }
            expect((await egl.verifyLedger()).ok).toBe(true)
          } finally {
            await egl.close()
          }
        }
      ),
      { numRuns: 100 }
    )
    console.log(`admitted ${admitted} of ${admissions} (${escalated} escalated); denials:`, Object.fromEntries(codes))
    expect(admissions).toBeGreaterThanOrEqual(10_000)
    // The generators must reach the interesting side too, or the properties above prove little.
    expect(admitted).toBeGreaterThan(500)
    expect(escalated).toBeGreaterThan(20)
  })
})
