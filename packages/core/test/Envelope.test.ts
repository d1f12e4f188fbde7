import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Canonical, Envelope } from "@egl/core"

// Strings with everything JSON escapes or JCS must keep: quotes, backslashes, control characters, non-ASCII, astral.
const text = fc.string({
  unit: fc.constantFrom("a", "Z", "0", " ", '"', "\\", "\n", "\u0001", "\u007f", "é", "漢", "😀", "\u2028"),
  maxLength: 12
})
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined })
const tier = fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<0 | 1 | 2 | 3>
const resources = fc.dictionary(
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}$/),
  fc.oneof(
    fc.integer({ min: -1e6, max: 1e6 }),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
    text,
    fc.boolean()
  ),
  { maxKeys: 4 }
)
const strip = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T

const envelopeArb: fc.Arbitrary<Envelope.UnsealedEnvelope> = fc
  .record({
    id: text,
    receivedAt: text,
    state: fc.constantFrom("admitted", "denied"),
    subject: fc.record({
      id: text,
      kind: fc.constantFrom("user", "service", "agent"),
      roles: fc.array(text, { maxLength: 3 }),
      tenant: opt(text),
      delegation: opt(fc.array(fc.record({ id: text, kind: fc.constantFrom("user", "agent") }), { maxLength: 2 }))
    }),
    execution: fc.record({
      tool: text,
      toolVersion: opt(text),
      action: text,
      class: opt(fc.constantFrom("transform", "ai")),
      inputDigest: text
    }),
    scope: fc.record({
      environment: fc.constantFrom("dev", "prod"),
      project: opt(text),
      dataClassification: opt(text),
      region: opt(text)
    }),
    requested: fc.record({
      tier: opt(tier),
      capabilities: fc.array(text, { maxLength: 3 }),
      resources,
      runtime: opt(fc.record({ fingerprint: opt(text) })),
      escalation: opt(fc.record({ reason: text, justification: text }))
    }),
    granted: opt(
      fc.record({
        tier,
        capabilities: fc.array(text, { maxLength: 3 }),
        resources,
        pool: text,
        expiresAt: text,
        escalation: opt(
          fc.record({
            reason: text,
            justification: text,
            fromTier: tier,
            toTier: tier,
            capabilities: fc.array(text, { maxLength: 2 }),
            approvedBy: text
          })
        )
      })
    ),
    decision: fc.record({
      outcome: fc.constantFrom("admitted", "denied"),
      reasonCodes: fc.array(text, { maxLength: 3 }),
      matchedRules: fc.array(text, { maxLength: 3 }),
      rationale: text,
      policySnapshotId: text,
      decidedAt: text
    }),
    runtime: fc.record({ fingerprint: opt(text), verdict: fc.constantFrom("exact", "blocked"), detail: opt(text) }),
    cache: fc.record({ eligible: fc.boolean(), key: opt(text), hit: fc.boolean(), reason: opt(text) })
  })
  .map((e) => {
    const clean = (o: Record<string, unknown>): Record<string, unknown> =>
      strip(
        Object.fromEntries(
          Object.entries(o).map(([k, v]) => [
            k,
            v !== null && typeof v === "object" && !Array.isArray(v) && k !== "resources"
              ? clean(v as Record<string, unknown>)
              : v
          ])
        )
      )
    return { ...clean(e), version: 1 } as unknown as Envelope.UnsealedEnvelope
  })

describe("Envelope", () => {
  it("the sealer's serializer yields exactly the generic RFC 8785 text, for any envelope", () => {
    fc.assert(
      fc.property(envelopeArb, (e) => {
        const sealed = Envelope.sealedForm(e)
        expect(sealed).not.toBeInstanceOf(Canonical.CanonicalizationError)
        expect((sealed as Envelope.SealedForm).canonical).toBe(Canonical.toCanonicalJsonSync(e))
        // and the sealed envelope verifies, also after a JSON round trip
        const envelope = Envelope.withSnapshotId(e, (sealed as Envelope.SealedForm).snapshotId)
        expect(Envelope.verifySeal(JSON.parse(JSON.stringify(envelope)))).toBe(true)
      }),
      { numRuns: 10_000 }
    )
  })

  it("any change is detected: an altered value, a removed field, an added key", () => {
    fc.assert(
      fc.property(envelopeArb, text, (e, extra) => {
        const envelope = Envelope.withSnapshotId(e, (Envelope.sealedForm(e) as Envelope.SealedForm).snapshotId)
        const altered = structuredClone(envelope) as unknown as { subject: { roles: Array<string> } }
        altered.subject.roles.push("root")
        expect(Envelope.verifySeal(altered as never)).toBe(false)
        const added = structuredClone(envelope) as unknown as { scope: Record<string, unknown> }
        added.scope[`x${extra.length}extra`] = extra
        expect(Envelope.verifySeal(added as never)).toBe(false)
        const removed = structuredClone(envelope) as unknown as { decision: Record<string, unknown> }
        delete removed.decision.decidedAt
        expect(Envelope.verifySeal(removed as never)).toBe(false)
        const flipped = { ...envelope, cache: { ...envelope.cache, hit: !envelope.cache.hit } }
        expect(Envelope.verifySeal(flipped)).toBe(false)
      }),
      { numRuns: 2_000 }
    )
  })

  it("a lone surrogate falls back to the generic serializer's typed error", () => {
    const e = fc.sample(envelopeArb, { numRuns: 1, seed: 7 })[0]!
    const form = Envelope.sealedForm({ ...e, id: "x\uD800" })
    expect(form).toBeInstanceOf(Canonical.CanonicalizationError)
  })

  it("lifecycle transitions follow received → classified → evaluated → admitted | denied → dispatched → completed | failed | expired", () => {
    expect(Envelope.canTransition("received", "classified")).toBe(true)
    expect(Envelope.canTransition("evaluated", "admitted")).toBe(true)
    expect(Envelope.canTransition("admitted", "dispatched")).toBe(true)
    expect(Envelope.canTransition("dispatched", "completed")).toBe(true)
    expect(Envelope.canTransition("denied", "dispatched")).toBe(false)
    expect(Envelope.canTransition("completed", "dispatched")).toBe(false)
    expect(Envelope.canTransition("received", "admitted")).toBe(false)
  })
})
