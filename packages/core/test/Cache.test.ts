import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { createGovernance, DeterminismEngine, Ledger, type Classifier, type PolicyEngine } from "@egl/core"

const registry: Classifier.RegistryInput = {
  tools: [
    {
      tool: "text",
      version: "2.1.0",
      stage: "active",
      actions: { normalize: { class: "transform" }, fetch: { class: "network", capabilities: ["net.egress"] } }
    }
  ]
}
const policy: PolicyEngine.PolicyInput = {
  version: "cache-v1",
  rules: [{ id: "agents", effect: "allow", match: { principalKinds: ["agent"] }, tier: 2 }]
}
const agent = { id: "planner", kind: "agent" as const, roles: [] }
const normalize = (input: unknown) => ({
  tool: "text",
  action: "normalize",
  subject: agent,
  scope: { environment: "dev" as const },
  input
})

describe("deterministic cache through the pipeline", () => {
  it("serves a repeated transform from the cache, verified, without running it again", async () => {
    const store = DeterminismEngine.lruStore({ max: 100, ttlMs: 60_000 })
    const egl = await createGovernance({
      registry,
      policy,
      cache: { store },
      ledgerOptions: { checkpointIntervalMs: 0 }
    })
    try {
      let runs = 0
      const task = async (envelope: { readonly execution: { readonly inputDigest: string } }) => {
        runs++
        return { normalized: "hello world", from: envelope.execution.inputDigest }
      }
      const first = await egl.admit(normalize({ text: "  Hello   World ", lang: "en" }))
      if (!first.ok) throw new Error("expected admission")
      expect(first.envelope.cache).toMatchObject({ eligible: true, hit: false })
      expect(first.cached).toBeUndefined()
      const out1 = await egl.execute(first, task)
      expect(out1).toMatchObject({ ok: true, cached: false })

      // Same input in another key order: same digest, a verified hit, no second run.
      const second = await egl.admit(normalize({ lang: "en", text: "  Hello   World " }))
      if (!second.ok) throw new Error("expected admission")
      expect(second.reasonCodes).toContain("CACHE_HIT")
      expect(second.envelope.cache).toMatchObject({ eligible: true, hit: true, key: first.envelope.cache.key })
      expect(second.envelope.granted?.pool).toBe("cache")
      const out2 = await egl.execute(second, task)
      expect(out2).toEqual({ ok: true, output: out1.ok && out1.output, cached: true })
      expect(runs).toBe(1)

      // Another input is another key.
      const other = await egl.admit(normalize({ text: "else" }))
      expect(other.ok && other.envelope.cache.hit).toBe(false)

      // Side-effecting classes are never eligible.
      const fetch = await egl.admit({ ...normalize({ url: "x" }), action: "fetch" })
      expect(fetch.ok && fetch.envelope.cache).toMatchObject({ eligible: false, hit: false })

      // A poisoned entry is detected on read, never served, and recorded as an incident.
      const key = first.envelope.cache.key!
      const entry = await Effect.runPromise(store.get(key))
      await Effect.runPromise(store.set(key, { ...entry!, output: JSON.stringify({ normalized: "pwned" }) }, 60_000))
      const poisoned = await egl.admit(normalize({ text: "  Hello   World ", lang: "en" }))
      if (!poisoned.ok) throw new Error("expected admission")
      expect(poisoned.cached).toBeUndefined()
      expect(poisoned.reasonCodes).toContain("CACHE_POISONED")
      const history = await egl.runtime.runPromise(Ledger.Ledger.use((l) => l.history(poisoned.envelope.id)))
      expect(history.map((r) => [r.kind, r.kind === "incident" ? JSON.parse(r.body).type : undefined])).toEqual([
        ["decision", undefined],
        ["incident", "CACHE_POISONED"]
      ])
      expect((await egl.verifyLedger()).ok).toBe(true)
    } finally {
      await egl.close()
    }
  })

  it("a new policy version is a new snapshot id and so a cache miss", async () => {
    const store = DeterminismEngine.lruStore({ max: 100, ttlMs: 60_000 })
    const run = async (version: string) => {
      const egl = await createGovernance({
        registry,
        policy: { ...policy, version },
        cache: { store },
        ledgerOptions: { checkpointIntervalMs: 0 }
      })
      try {
        const a = await egl.admit(normalize({ text: "x" }))
        if (!a.ok) throw new Error("expected admission")
        if (a.cached === undefined) await egl.execute(a, async () => "X")
        return a
      } finally {
        await egl.close()
      }
    }
    const v1 = await run("v1")
    const v1again = await run("v1")
    const v2 = await run("v2")
    expect(v1again.cached?.output).toBe("X")
    expect(v2.cached).toBeUndefined()
    expect(v2.envelope.cache.key).not.toBe(v1.envelope.cache.key)
  })
})
