import { createGovernance, type GovernanceInstance } from "@egl/core"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { RedisGrantStore } from "../src/index.ts"
import { deleteKeys, policy, REDIS_URL, registry, request, uniquePrefix } from "./support/fixtures.ts"
import { closedPort } from "./support/proxy.ts"

const prefix = `${uniquePrefix("grants")}:`
const closers: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const c of closers.reverse()) await c()
  await deleteKeys(`${prefix}*`)
})

const store = (options: RedisGrantStore.Options = {}) => {
  const s = RedisGrantStore.make({ url: REDIS_URL, prefix, ...options })
  closers.push(() => s.close())
  return s
}

const governance = async (grants: RedisGrantStore.RedisGrantStore): Promise<GovernanceInstance> => {
  const egl = await createGovernance({ registry, policy, grants, ledgerOptions: { checkpointIntervalMs: 0 } })
  closers.push(() => egl.close())
  return egl
}

describe("RedisGrantStore", () => {
  it("marks a grant used once, atomically, across clients", async () => {
    const a = store()
    const b = store()
    const now = Date.now()
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) => Effect.runPromise((i % 2 ? a : b).consume("g-1", now + 5000, now)))
    )
    expect(outcomes.filter((o) => o === "consumed")).toHaveLength(1)
    expect(outcomes.filter((o) => o === "reused")).toHaveLength(19)
    expect(await Effect.runPromise(a.consume("g-2", now, now))).toBe("expired")
    const pttl = await a.client.pttl(`${prefix}g-1`)
    expect(pttl).toBeGreaterThan(5000)
    expect(pttl).toBeLessThanOrEqual(5000 + RedisGrantStore.EXPIRY_MARGIN_MS)
  })

  it("a grant dispatched through governance is used for every other process", async () => {
    const api = await governance(store())
    const admitted = await api.admit(request("network", { n: 1 }))
    if (!admitted.ok) throw new Error("expected an admission")
    expect((await api.dispatch(admitted.envelope)).ok).toBe(true)
    const reused = await api.dispatch(admitted.envelope)
    expect(!reused.ok && reused.error).toMatchObject({ _tag: "GrantRejected", code: "GRANT_REUSED" })
    // Another process, with its own client, sees the grant used.
    const elsewhere = store()
    const expiresAt = Date.parse(admitted.envelope.granted!.expiresAt)
    expect(await Effect.runPromise(elsewhere.consume(admitted.envelope.id, expiresAt, Date.now()))).toBe("reused")
  })

  it("fails closed when Redis cannot answer: nothing is dispatched", async () => {
    const port = await closedPort()
    const down = store({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 200 })
    const egl = await governance(down)
    const admitted = await egl.admit(request("network", { n: 2 }))
    if (!admitted.ok) throw new Error("expected an admission")
    const t0 = performance.now()
    const dispatched = await egl.dispatch(admitted.envelope)
    expect(performance.now() - t0).toBeLessThan(500)
    expect(!dispatched.ok && dispatched.error._tag).toBe("GrantStoreUnavailable")
    const executed = await egl.execute(admitted, async () => "ran")
    expect(executed.ok).toBe(false)
  })

  it("refuses unusable options at once", () => {
    expect(() => RedisGrantStore.make({ prefix: "" })).toThrow(RedisGrantStore.ConfigInvalid)
  })
})
