/**
 * Appends whose outcome the client cannot know: the connection is cut or terminated while COMMIT is in flight, or the
 * session is terminated before it. Every record must end up stored exactly once (zero copies only for an append that
 * failed), and the chain must verify.
 */
import { Ledger, Sealer } from "@egl/core"
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { PostgresLedger } from "../src/index.ts"
import { draftOf } from "../../../test/support/ledgerFixture.ts"
import { DATABASE_URL, testDatabase } from "./support/database.ts"

const db = testDatabase("idem")

/** Opens a storage on a new schema; `hook` sees every COMMIT in flight. */
const storageWith = async (hook: PostgresLedger.Options["onCommitSent"], options?: PostgresLedger.Options) => {
  const schema = db.fresh()
  const storage = await Effect.runPromise(
    PostgresLedger.make(DATABASE_URL, { schema, onCommitSent: hook, applicationName: schema, ...options })
  )
  return { schema, storage }
}

const closing: Array<PostgresLedger.PostgresStorage> = []
afterAll(() => Effect.runPromise(Effect.forEach(closing, (s) => s.close)))

/** Drafts whose bodies are unique across the test file. */
let drafted = 0
const batch = (size: number) => Array.from({ length: size }, () => draftOf(drafted++))

/** Every body stored once, the indices gapless, the chain intact. */
const expectExactlyOnce = async (
  schema: string,
  storage: PostgresLedger.PostgresStorage,
  expected: ReadonlyArray<Ledger.LedgerRecord>
) => {
  const rows = await db.sql<{ idx: string; body: string; hash: string }>(
    `SELECT idx, body, hash FROM ${schema}.records ORDER BY idx`
  )
  expect(rows.rows.map((r) => Number(r.idx))).toEqual(rows.rows.map((_, i) => i))
  expect(new Set(rows.rows.map((r) => r.body)).size).toBe(rows.rows.length)
  expect(rows.rows.map((r) => [Number(r.idx), r.body, r.hash])).toEqual(
    [...expected].sort((a, b) => a.index - b.index).map((r) => [r.index, r.body, r.hash])
  )
  expect(await Effect.runPromise(Ledger.verifyStorage(storage, []))).toMatchObject({
    ok: true,
    length: expected.length
  })
}

describe("PostgresLedger appends with an unknown outcome", () => {
  it("finds a batch committed before the connection was cut (COMMIT sent, reply lost) and stores it once", async () => {
    let cuts = 0
    const { schema, storage } = await storageWith((commit) => {
      if (commit.attempt === 0 && cuts < 10) {
        cuts++
        commit.cut()
      }
    })
    closing.push(storage)
    const placed: Array<Ledger.LedgerRecord> = []
    for (let i = 0; i < 20; i++) placed.push(...(await Effect.runPromise(storage.append(batch(1 + (i % 4))))))
    expect(cuts).toBe(10)
    // Each cut append went to a new session and found all its records by key, under the head lock.
    expect(storage.retries).toBe(10)
    expect(storage.recovered).toBe(10)
    expect(storage.commits).toBe(10)
    await expectExactlyOnce(schema, storage, placed)
  })

  it("writes a batch again when its session was terminated while COMMIT was still running, and stores it once", async () => {
    // A deferred trigger holds COMMIT open on the server, so the termination lands inside it: the commit never happens.
    const { schema, storage } = await storageWith(async (commit) => {
      if (commit.attempt !== 0) return
      const deadline = Date.now() + 10_000
      for (;;) {
        if (Date.now() > deadline) throw new Error("COMMIT never showed in pg_stat_activity")
        const activity = await db.sql("SELECT query FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [
          commit.pid
        ])
        if (activity.rows[0]?.query === "COMMIT") break
      }
      expect((await db.sql("SELECT pg_terminate_backend($1) AS ok", [commit.pid])).rows[0].ok).toBe(true)
    })
    closing.push(storage)
    await db.sql(
      `CREATE FUNCTION ${schema}.slow_commit() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$;
       CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ${schema}.records DEFERRABLE INITIALLY DEFERRED
         FOR EACH ROW EXECUTE FUNCTION ${schema}.slow_commit()`
    )
    const placed = await Effect.runPromise(storage.append(batch(3)))
    expect(storage.retries).toBe(1)
    expect(storage.recovered).toBe(0)
    expect(placed.map((r) => r.index)).toEqual([0, 1, 2])
    await expectExactlyOnce(schema, storage, placed)
  })

  it("never stores a batch twice when a second session terminates the appending one at random moments", async () => {
    const { schema, storage } = await storageWith(async (commit) => {
      // Sometimes before COMMIT is processed, sometimes during, sometimes after its reply is on its way.
      if (commit.attempt !== 0) return
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 3))
      await db.sql("SELECT pg_terminate_backend($1)", [commit.pid])
    })
    closing.push(storage)
    const placed = await Effect.runPromise(
      Effect.forEach(
        Array.from({ length: 30 }, (_, i) => batch(1 + (i % 3))),
        (drafts) => storage.append(drafts),
        { concurrency: 1 }
      )
    )
    const records = placed.flat()
    expect(records).toHaveLength(60)
    await expectExactlyOnce(schema, storage, records)
    console.log(
      `postgres terminations during COMMIT: 30 appends, ${storage.retries} retried, ` +
        `${storage.recovered} found committed by key, ${storage.retries - storage.recovered} written again`
    )
  })

  it("retries a batch whose session was terminated while it waited for the head lock", async () => {
    const { schema, storage } = await storageWith(undefined)
    closing.push(storage)
    const first = await Effect.runPromise(storage.append(batch(2)))
    const holder = await db.admin.connect()
    try {
      await holder.query(`BEGIN; SELECT * FROM ${schema}.head FOR UPDATE`)
      const appending = Effect.runPromise(storage.append(batch(2)))
      const waiting = () =>
        db.sql("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", [schema])
      let blocked = await waiting()
      while (blocked.rows.length === 0) blocked = await waiting()
      await db.sql("SELECT pg_terminate_backend($1)", [blocked.rows[0].pid])
      while ((await waiting()).rows.length === 0);
      await holder.query("COMMIT")
      const second = await appending
      expect(storage.retries).toBe(1)
      expect(storage.recovered).toBe(0)
      await expectExactlyOnce(schema, storage, [...first, ...second])
    } finally {
      holder.release()
    }
  })

  it("ends the session of an append the service gave up on (append timeout), so nothing lands later", async () => {
    const { schema, storage } = await storageWith(undefined)
    closing.push(storage)
    const keys = Sealer.generateKeyPair()
    const holder = await db.admin.connect()
    try {
      await holder.query(`BEGIN; SELECT * FROM ${schema}.head FOR UPDATE`)
      const refused = await Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(Ledger.make(storage, { appendTimeoutMs: 300, checkpointIntervalMs: 0 }), (ledger) =>
            Effect.flip(ledger.append(draftOf(drafted++)))
          )
        ).pipe(Effect.provide(Sealer.Sealer.layer({ privateKeyPem: keys.privateKeyPem })))
      )
      expect(refused.detail).toMatch(/append timed out$/)
      // The server notices within its client check interval (1 s) that nobody waits for the lock any more.
      const waiting = async () =>
        (
          await db.sql(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
            [schema]
          )
        ).rows[0].n
      const deadline = Date.now() + 3000
      while ((await waiting()) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      expect(await waiting()).toBe(0)
    } finally {
      await holder.query("COMMIT")
      holder.release()
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(storage.retries).toBe(0)
    await expectExactlyOnce(schema, storage, [])
  })

  it("gives up after maxAttempts lost sessions, and on a definite error at once: LedgerUnavailable, nothing stored", async () => {
    const { schema, storage } = await storageWith(undefined, { maxAttempts: 3, statementTimeoutMs: 1500 })
    closing.push(storage)
    const holder = await db.admin.connect()
    try {
      await holder.query(`BEGIN; SELECT * FROM ${schema}.head FOR UPDATE`)
      // Every attempt is terminated as soon as it waits for the lock.
      let killing = true
      const killer = (async () => {
        let killed = 0
        while (killing) {
          const r = await db.sql(
            `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
             WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [schema]
          )
          killed += r.rows[0].n
        }
        return killed
      })()
      const lost = await Effect.runPromise(Effect.flip(storage.append(batch(2))))
      killing = false
      expect(await killer).toBeGreaterThanOrEqual(3)
      expect(lost._tag).toBe("LedgerUnavailable")
      expect(lost.detail).toMatch(/terminating connection due to administrator command \(SQLSTATE 57P01\)$/)
      expect(storage.retries).toBe(2)

      // A statement timeout is the server's answer, not a lost session: no retry.
      const timedOut = await Effect.runPromise(Effect.flip(storage.append(batch(1))))
      expect(timedOut.detail).toMatch(/canceling statement due to statement timeout \(SQLSTATE 57014\)$/)
      expect(storage.retries).toBe(2)
    } finally {
      await holder.query("COMMIT")
      holder.release()
    }
    expect((await db.sql(`SELECT count(*)::int AS n FROM ${schema}.records`)).rows[0].n).toBe(0)
    await expectExactlyOnce(schema, storage, [])
  })
})
