/**
 * Fail closed: each service of the pipeline made to fail — throw, hang, answer garbage — ends in a denial with a
 * reason code (or a typed unavailability when the sealer or the ledger itself is what fails), and nothing is admitted.
 */
import { Effect, Exit, Layer } from "effect"
import { describe, expect, it } from "vitest"
import {
  Admission,
  Attestor,
  CapabilityGuard,
  Classifier,
  IsolationRouter,
  Ledger,
  PolicyEngine,
  Sealer
} from "@egl/core"
import { decisions, runtimeWith } from "./fixtures/runtime.ts"
import { deploy } from "./fixtures/scenario.ts"

type Mode = "throw" | "hang" | "garbage"
const boom = () => {
  throw new Error("injected failure")
}
const fault = <A>(mode: Mode, garbage: unknown): Effect.Effect<A> =>
  mode === "throw" ? Effect.sync(boom) : mode === "hang" ? Effect.never : Effect.succeed(garbage as A)

const replace = <I, S>(
  tag: { readonly Service: S } & import("effect").Context.Key<I, S>,
  patch: (real: S) => Partial<S>
) =>
  Layer.effect(
    tag as never,
    Effect.map(tag as unknown as Effect.Effect<S, never, I>, (real) => ({ ...real, ...patch(real) })) as never
  )

const cases: ReadonlyArray<{
  service: string
  layer: (mode: Mode) => Layer.Layer<any, any, any>
  expect: string
  modes: ReadonlyArray<Mode>
}> = [
  {
    service: "Classifier",
    layer: (m) => replace(Classifier.Classifier, () => ({ classify: () => fault(m, { tool: 1 }) })),
    expect: "CLASS_UNKNOWN",
    modes: ["throw", "hang", "garbage"]
  },
  {
    service: "PolicyEngine",
    layer: (m) => replace(PolicyEngine.PolicyEngine, () => ({ match: () => fault(m, { allows: "everything" }) })),
    expect: "POLICY_UNAVAILABLE",
    modes: ["throw", "hang", "garbage"]
  },
  {
    service: "CapabilityGuard",
    // garbage: an over-grant (tier 3, no escalation) that only the invariant check stands between.
    layer: (m) =>
      replace(CapabilityGuard.CapabilityGuard, () => ({
        authorize: () =>
          fault(m, {
            tier: 3,
            capabilities: ["admin.mutate"],
            resources: {},
            notices: ["POLICY_ALLOW"],
            matchedRules: ["ml-engineer-nonprod"],
            ruleId: "ml-engineer-nonprod",
            rationale: "",
            ttlSeconds: 60
          })
      })),
    expect: "POLICY_UNAVAILABLE",
    modes: ["throw", "hang", "garbage"]
  },
  {
    service: "Attestor",
    // attest is synchronous by contract: it can throw or answer garbage, it cannot hang without blocking the process.
    layer: (m) =>
      replace(Attestor.Attestor, () => ({
        attest: () => (m === "throw" ? boom() : ({ verdict: "trust-me" } as never))
      })),
    expect: "RUNTIME_UNATTESTED",
    modes: ["throw", "garbage"]
  },
  {
    service: "IsolationRouter",
    layer: (m) =>
      replace(IsolationRouter.IsolationRouter, () => ({
        select: () => fault(m, { pool: "pool-t0", tier: 0, fallback: false })
      })),
    expect: "POOL_UNAVAILABLE",
    modes: ["throw", "hang", "garbage"]
  },
  {
    service: "Sealer",
    layer: (m) => replace(Sealer.Sealer, () => ({ seal: () => fault(m, { canonical: 42 }) })),
    expect: "SealerUnavailable",
    modes: ["throw", "hang", "garbage"]
  },
  {
    service: "Ledger",
    layer: (m) => replace(Ledger.Ledger, () => ({ appendAll: () => fault(m, [{ index: "x" }]) })),
    expect: "LedgerUnavailable",
    modes: ["throw", "hang", "garbage"]
  }
]

const requests = [
  deploy("alice", "dev", { gpus: 2, replicas: 1 }),
  deploy("bob", "prod", { gpus: 8, replicas: 1 }, { escalation: true }),
  deploy("alice", "staging", { gpus: 1, replicas: 9 })
]

describe("fail closed", () => {
  for (const c of cases) {
    for (const mode of c.modes) {
      it(`${c.service} that ${mode === "throw" ? "throws" : mode === "hang" ? "hangs" : "answers garbage"} admits nothing`, async () => {
        const runtime = runtimeWith(c.layer(mode), { admissionTimeoutMs: 50 })
        try {
          for (const req of requests) {
            const exit = await runtime.runPromiseExit(Admission.Admission.use((a) => a.admit(req)))
            expect(Exit.isFailure(exit)).toBe(true)
            if (Exit.isSuccess(exit)) continue
            const error = exit.cause.reasons.find((r) => r._tag === "Fail")
            expect(error?._tag).toBe("Fail")
            const e = (error as { error: { _tag: string; reasonCodes?: ReadonlyArray<string> } }).error
            if (c.expect === "SealerUnavailable" || c.expect === "LedgerUnavailable") {
              expect(e._tag).toBe(c.expect)
            } else {
              expect(e._tag).toBe("Denied")
              expect(e.reasonCodes).toEqual([c.expect])
            }
          }
          // Nothing admitted in the ledger either (for a failing ledger the real one behind it must be empty too).
          const recorded = await decisions(runtime)
          expect(recorded.filter((d) => d.decision.outcome === "admitted")).toEqual([])
          if (c.service !== "Sealer" && c.service !== "Ledger") expect(recorded).toHaveLength(requests.length)
        } finally {
          await runtime.dispose()
        }
      })
    }
  }

  it("a working pipeline admits the same requests (the faults above are what denied them)", async () => {
    const runtime = runtimeWith()
    try {
      const outcomes = []
      for (const req of requests)
        outcomes.push(Exit.isSuccess(await runtime.runPromiseExit(Admission.Admission.use((a) => a.admit(req)))))
      expect(outcomes).toEqual([true, true, true])
    } finally {
      await runtime.dispose()
    }
  })
})
