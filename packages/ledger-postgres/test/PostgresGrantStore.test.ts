import { createGovernance, Ledger, Sealer, type AdmissionRequest, type Governance } from "@egl/core"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { policy, registry } from "../../../examples/quickstart/src/scenario.ts"
import { PostgresGrantStore, PostgresLedger } from "../src/index.ts"
import { DATABASE_URL, testDatabase, urlOf } from "./support/database.ts"

const db = testDatabase("grants")

const principals = {
  alice: { id: "alice", kind: "user", roles: ["ml-engineer"] },
  bob: { id: "bob", kind: "user", roles: ["ml-admin"] }
} as const

/** A deploy request of the reference scenario; bob's to prod carries the escalation the policy approves. */
const deploy = (who: keyof typeof principals, environment: "dev" | "prod"): AdmissionRequest.AdmissionRequestInput => ({
  tool: "serving",
  action: "deploy_model",
  subject: principals[who],
  scope: { environment },
  input: { model: { id: "llama-3-8b", version: "2026.11.1" } },
  requested: {
    resources: { gpus: 2, replicas: 1 },
    ...(who === "bob" ? { escalation: { reason: "PRIVILEGED_MUTATION", justification: "release 2026.11" } } : {})
  }
})

describe("PostgresGrantStore", () => {
  it("consumes a grant once, answers reused after, expired without asking the database", async () => {
    const schema = db.fresh()
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* PostgresGrantStore.open(DATABASE_URL, { schema })
          expect(store.description).toMatch(new RegExp(`\\?schema=${schema}$`))
          const now = Date.now()
          expect(yield* store.consume("g-1", now + 60_000, now)).toBe("consumed")
          expect(yield* store.consume("g-1", now + 60_000, now + 1)).toBe("reused")
          expect(yield* store.consume("g-2", now, now)).toBe("expired")
          expect(yield* store.consume("g-2", now + 60_000, now)).toBe("consumed")
          const rows = yield* Effect.promise(() => db.sql(`SELECT id FROM ${schema}.grants ORDER BY id`))
          expect(rows.rows).toEqual([{ id: "g-1" }, { id: "g-2" }])
        })
      )
    )
  })

  it("deletes grants long expired (after the retention), never live ones", async () => {
    const schema = db.fresh()
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const store = yield* PostgresGrantStore.open(urlOf(schema), { retentionMs: 1000 })
          const t = 1_000_000_000_000
          yield* store.consume("old", t + 10, t)
          yield* store.consume("recent", t + 5000, t)
          expect(yield* store.sweep(t + 1500)).toBe(1)
          expect(yield* store.sweep(t + 1500)).toBe(0)
          const rows = yield* Effect.promise(() => db.sql(`SELECT id FROM ${schema}.grants`))
          expect(rows.rows).toEqual([{ id: "recent" }])
          // A late use of a deleted grant is still refused: it expired before it was deleted.
          expect(yield* store.consume("old", t + 10, t + 1500)).toBe("expired")
        })
      )
    )
  })

  it("fails closed with GrantStoreUnavailable when the database cannot answer", async () => {
    const store = await Effect.runPromise(PostgresGrantStore.make(DATABASE_URL, { schema: db.fresh() }))
    await Effect.runPromise(store.close)
    const error = await Effect.runPromise(Effect.flip(store.consume("g", Date.now() + 1000, Date.now())))
    expect(error._tag).toBe("GrantStoreUnavailable")
    const unreachable = await Effect.runPromise(
      Effect.flip(PostgresGrantStore.make("postgres://egl:hunter2@127.0.0.1:1/egl", { statementTimeoutMs: 1000 }))
    )
    expect(unreachable._tag).toBe("GrantStoreUnavailable")
    expect(unreachable.detail).toMatch(/^postgres:\/\/egl:\*\*\*@127\.0\.0\.1:1\/egl\?schema=public: /)
  })

  it("uses a single-use grant once when it is replayed 100 times concurrently across two instances", async () => {
    const schema = db.fresh()
    const url = urlOf(schema)
    const keys = Sealer.generateKeyPair()
    const grants = await Effect.runPromise(
      Effect.all([PostgresGrantStore.make(url), PostgresGrantStore.make(url)], { concurrency: "unbounded" })
    )
    const instances: Array<Governance.Governance> = []
    try {
      for (const store of grants) {
        instances.push(
          await createGovernance({
            registry,
            policy,
            keys,
            ledger: { storage: PostgresLedger.open(url, { schema }) },
            grants: store,
            ledgerOptions: { checkpointIntervalMs: 0 }
          })
        )
      }
      const [a, b] = instances as [Governance.Governance, Governance.Governance]

      const admitted = await a.admit(deploy("bob", "prod"))
      if (!admitted.ok) throw new Error(`expected an admission, got ${admitted.error._tag}`)
      const dispatched = await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).dispatch(admitted.envelope))
      )
      expect(dispatched.filter((r) => r.ok)).toHaveLength(1)
      const refused = dispatched.flatMap((r) => (r.ok ? [] : [r.error]))
      expect(refused).toHaveLength(99)
      for (const e of refused) expect(e._tag === "GrantRejected" && e.code).toBe("GRANT_REUSED")

      const again = await b.admit(deploy("alice", "dev"))
      if (!again.ok) throw new Error(`expected an admission, got ${again.error._tag}`)
      let runs = 0
      const task = async () => {
        runs++
        await new Promise((resolve) => setTimeout(resolve, 5))
        return { deployed: true }
      }
      const executed = await Promise.all(
        Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).execute(again, task))
      )
      expect(runs).toBe(1)
      expect(executed.filter((r) => r.ok)).toHaveLength(1)
      for (const r of executed) if (!r.ok) expect(r.error._tag === "GrantRejected" && r.error.code).toBe("GRANT_REUSED")

      // One grant row per envelope; the shared chain holds one dispatch per envelope and an incident per replay.
      const used = await db.sql(`SELECT id FROM ${schema}.grants ORDER BY id`)
      expect(used.rows.map((r) => r.id).sort()).toEqual([admitted.envelope.id, again.envelope.id].sort())
      const history = await a.records(0, 10_000)
      const about = (id: string) =>
        history.filter((r): r is Ledger.LedgerRecord => !Ledger.isCorrupt(r) && r.ref === id).map((r) => r.body)
      for (const id of [admitted.envelope.id, again.envelope.id]) {
        expect(about(id).filter((body) => body.includes('"phase":"dispatched"'))).toHaveLength(1)
        expect(about(id).filter((body) => body.includes('"GRANT_REUSED"'))).toHaveLength(99)
      }
      expect(await a.verifyLedger()).toMatchObject({ ok: true })
      expect(await b.verifyLedger()).toMatchObject({ ok: true })
    } finally {
      for (const egl of instances) await egl.close()
      await Effect.runPromise(Effect.forEach(grants, (g) => g.close))
    }
  })
})
