import { Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import { describe, expect, it } from "vitest"
import { Admission, createGovernance } from "@egl/core"
import { config, runtimeWith } from "./fixtures/runtime.ts"
import { deploy } from "./fixtures/scenario.ts"

describe("single-use grants", () => {
  it("used twice concurrently: exactly one succeeds, the other is GRANT_REUSED", async () => {
    const egl = await createGovernance(config())
    try {
      for (let round = 0; round < 25; round++) {
        const admitted = await egl.admit(deploy("bob", "prod", { gpus: 2, replicas: 1 }, { escalation: true }))
        if (!admitted.ok) throw new Error("expected admission")
        const results = await Promise.all([
          egl.dispatch(admitted.envelope),
          egl.dispatch(admitted.envelope),
          egl.dispatch(admitted.envelope)
        ])
        expect(results.filter((r) => r.ok)).toHaveLength(1)
        for (const r of results.filter((x) => !x.ok)) {
          expect(r.ok === false && r.error._tag === "GrantRejected" && r.error.code).toBe("GRANT_REUSED")
        }
      }
      expect((await egl.verifyLedger()).ok).toBe(true)
    } finally {
      await egl.close()
    }
  })

  it("executed twice concurrently: the task runs exactly once", async () => {
    const egl = await createGovernance(config())
    try {
      const admitted = await egl.admit(deploy("alice", "dev", { gpus: 1, replicas: 1 }))
      if (!admitted.ok) throw new Error("expected admission")
      let runs = 0
      const task = async () => {
        runs++
        return "deployed"
      }
      const results = await Promise.all(Array.from({ length: 10 }, () => egl.execute(admitted, task)))
      expect(runs).toBe(1)
      expect(results.filter((r) => r.ok)).toHaveLength(1)
    } finally {
      await egl.close()
    }
  })

  it("after its expiry: GRANT_EXPIRED (and an incident is recorded)", async () => {
    const runtime = runtimeWith()
    const program = Effect.gen(function* () {
      const admission = yield* Admission.Admission
      const admitted = yield* admission.admit(deploy("bob", "prod", { gpus: 2, replicas: 1 }, { escalation: true }))
      const ttl = Date.parse(admitted.envelope.granted!.expiresAt) - Date.parse(admitted.envelope.decision.decidedAt)
      yield* TestClock.adjust(ttl)
      return yield* Effect.exit(admission.dispatch(admitted.envelope))
    }).pipe(Effect.provide(TestClock.layer()))
    try {
      const exit = await runtime.runPromise(program)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const f = exit.cause.reasons.find((r) => r._tag === "Fail") as { error: { _tag: string; code: string } }
        expect(f.error._tag).toBe("GrantRejected")
        expect(f.error.code).toBe("GRANT_EXPIRED")
      }
    } finally {
      await runtime.dispose()
    }
  })

  it("one millisecond before expiry the grant is still usable", async () => {
    const runtime = runtimeWith()
    const program = Effect.gen(function* () {
      const admission = yield* Admission.Admission
      const admitted = yield* admission.admit(deploy("bob", "prod", { gpus: 2, replicas: 1 }, { escalation: true }))
      const ttl = Date.parse(admitted.envelope.granted!.expiresAt) - Date.parse(admitted.envelope.decision.decidedAt)
      yield* TestClock.adjust(ttl - 1)
      return yield* Effect.exit(admission.dispatch(admitted.envelope))
    }).pipe(Effect.provide(TestClock.layer()))
    try {
      expect(Exit.isSuccess(await runtime.runPromise(program))).toBe(true)
    } finally {
      await runtime.dispose()
    }
  })
})
