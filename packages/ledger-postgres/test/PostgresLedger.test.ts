import { Ledger } from "@egl/core"
import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { PostgresLedger } from "../src/index.ts"
import { appendSequentially, draftOf, ledgerFixture, prng } from "../../../test/support/ledgerFixture.ts"
import { DATABASE_URL, testDatabase, urlOf } from "./support/database.ts"

const db = testDatabase("ledger")
const { fresh, keys, itGroupCommits, withLedger, withStorage, verifyFile } = ledgerFixture({
  name: "postgres",
  extension: "pg",
  open: (path) => PostgresLedger.open(DATABASE_URL, { schema: db.schemaOfPath(path) })
})

const openError = (url: string, options?: PostgresLedger.Options) =>
  Effect.runPromise(Effect.flip(PostgresLedger.make(url, options)))

describe("PostgresLedger", () => {
  it("round-trips appends through read, findRef and head, in its own schema", async () => {
    const path = fresh()
    const schema = db.schemaOfPath(path)
    await withLedger(path, (ledger, storage) =>
      Effect.gen(function* () {
        expect(storage.description).toMatch(new RegExp(`^postgres(ql)?://[^?]*\\?schema=${schema}$`))
        expect(storage.migrated).toEqual([1, 2])
        const first = yield* appendSequentially(ledger, 0, 5)
        const exec = yield* ledger.append(draftOf(5, "env-2", "execution"))
        expect(yield* ledger.head).toEqual({ size: 6, hash: exec.hash })
        expect(yield* storage.head).toEqual({ size: 6, hash: exec.hash })
        expect(yield* ledger.read(0, 100)).toEqual([...first, exec])
        expect((yield* ledger.read(2, 2)).map((r) => r.index)).toEqual([2, 3])
        expect(yield* ledger.read(6, 10)).toEqual([])
        expect((yield* ledger.history("env-2")).map((r) => [r.index, r.kind])).toEqual([
          [2, "decision"],
          [5, "execution"]
        ])
        expect(yield* ledger.history("nobody")).toEqual([])
      })
    )
    const meta = await db.sql(`SELECT value FROM ${schema}.meta WHERE key = 'schema_version'`)
    expect(meta.rows).toEqual([{ value: String(PostgresLedger.SCHEMA_VERSION) }])
    const keyed = await db.sql(`SELECT count(DISTINCT idempotency_key)::int AS n FROM ${schema}.records`)
    expect(keyed.rows[0].n).toBe(6)
    expect(await verifyFile(path)).toMatchObject({ ok: true, length: 6, checkpointsVerified: 1 })
  })

  it("continues the chain after reopening, and migrating again runs no step", async () => {
    const path = fresh()
    const first = await withLedger(path, (ledger) => appendSequentially(ledger, 0, 4))
    const second = await withLedger(path, (ledger, storage) =>
      Effect.gen(function* () {
        expect(storage.migrated).toEqual([])
        expect(yield* ledger.head).toEqual({ size: 4, hash: first[3]!.hash })
        return yield* appendSequentially(ledger, 4, 3)
      })
    )
    expect(second.map((r) => r.index)).toEqual([4, 5, 6])
    expect(second[0]!.prevHash).toBe(first[3]!.hash)
    expect(await verifyFile(path)).toMatchObject({ ok: true, length: 7, checkpointsVerified: 2 })
  })

  it("runs each migration step once when four instances open a new schema at the same moment", async () => {
    const schema = db.fresh()
    const storages = await Effect.runPromise(
      Effect.all(
        Array.from({ length: 4 }, () => PostgresLedger.make(DATABASE_URL, { schema })),
        { concurrency: "unbounded" }
      )
    )
    try {
      const ran = storages.flatMap((s) => s.migrated).sort()
      expect(ran).toEqual([1, 2])
      const steps = await db.sql(`SELECT step FROM ${schema}.migrations ORDER BY step`)
      expect(steps.rows).toEqual([{ step: 1 }, { step: 2 }])
      const heads = await db.sql(`SELECT size::int AS size FROM ${schema}.head`)
      expect(heads.rows).toEqual([{ size: 0 }])
    } finally {
      await Effect.runPromise(Effect.forEach(storages, (s) => s.close))
    }
  })

  it("refuses a schema written by a newer version", async () => {
    const path = fresh()
    await withStorage(path, (s) => s.head)
    const schema = db.schemaOfPath(path)
    await db.sql(`UPDATE ${schema}.meta SET value = '99' WHERE key = 'schema_version'`)
    const error = await openError(DATABASE_URL, { schema })
    expect(error._tag).toBe("LedgerUnavailable")
    expect(error.detail).toMatch(
      new RegExp(`\\?schema=${schema}: schema version 99 is newer than this module supports \\(2\\)$`)
    )
    // Refused, not downgraded.
    expect((await db.sql(`SELECT value FROM ${schema}.meta WHERE key = 'schema_version'`)).rows).toEqual([
      { value: "99" }
    ])
  })

  it("refuses an invalid schema name and an unreachable server with a typed error, never showing a password", async () => {
    const invalid = await openError(DATABASE_URL, { schema: 'x"; DROP SCHEMA public; --' })
    expect(invalid.detail).toMatch(/^postgres: invalid schema name "x"; DROP SCHEMA public; --": use lower-case/)
    expect((await openError(`${DATABASE_URL}?schema=Ledger`)).detail).toMatch(/invalid schema name "Ledger"/)
    expect((await openError("mysql://localhost/egl")).detail).toMatch(/not a PostgreSQL URL/)

    const unreachable = await openError("postgres://egl:hunter2@127.0.0.1:1/egl?sslmode=disable&password=hunter3", {
      statementTimeoutMs: 1000
    })
    expect(unreachable._tag).toBe("LedgerUnavailable")
    expect(unreachable.detail).toMatch(/^postgres:\/\/egl:\*\*\*@127\.0\.0\.1:1\/egl\?schema=public: .*ECONNREFUSED/)
    expect(unreachable.detail).not.toMatch(/hunter/)
  })

  itGroupCommits(
    "group-commits concurrent appends into fewer transactions, each caller getting its own record",
    (storage) => storage.commits
  )

  it("links after the other instance's records when two storages share the schema", async () => {
    const schema = db.fresh()
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const a = yield* PostgresLedger.open(DATABASE_URL, { schema })
          const b = yield* PostgresLedger.open(urlOf(schema))
          for (let i = 0; i < 10; i++) yield* (i % 3 === 0 ? b : a).append([draftOf(i)])
          yield* Effect.all(
            Array.from({ length: 20 }, (_, i) =>
              (i % 2 === 0 ? a : b).append([draftOf(10 + 2 * i), draftOf(11 + 2 * i)])
            ),
            { concurrency: "unbounded" }
          )
          expect(yield* a.head).toEqual(yield* b.head)
          expect((yield* a.head).size).toBe(50)
          expect(yield* Ledger.verifyStorage(a, [])).toMatchObject({ ok: true, length: 50 })
        })
      )
    )
    const gapless = await db.sql(
      `SELECT count(*)::int AS n, min(idx)::int AS lo, max(idx)::int AS hi, count(DISTINCT prev_hash)::int AS links
       FROM ${schema}.records`
    )
    expect(gapless.rows).toEqual([{ n: 50, lo: 0, hi: 49, links: 50 }])
  })

  it("fails closed with the pg message once closed", async () => {
    const storage = await Effect.runPromise(PostgresLedger.make(DATABASE_URL, { schema: db.fresh() }))
    await Effect.runPromise(storage.close)
    await Effect.runPromise(storage.close)
    const error = await Effect.runPromise(Effect.flip(storage.append([draftOf(0)])))
    expect(error._tag).toBe("LedgerUnavailable")
    expect(error.detail).toMatch(/^postgres:\/\/.*\?schema=egl_test_.*: Cannot use a pool after calling end/)
    expect((await Effect.runPromise(Effect.flip(storage.head)))._tag).toBe("LedgerUnavailable")
  })

  it("refuses to append when the head row is gone, rather than restart the chain", async () => {
    const path = fresh()
    await withLedger(path, (ledger) => appendSequentially(ledger, 0, 2))
    const schema = db.schemaOfPath(path)
    await db.sql(`DELETE FROM ${schema}.head`)
    const error = await withStorage(path, (s) => Effect.flip(s.append([draftOf(2)])))
    expect(error.detail).toMatch(/the head row is missing/)
    expect((await db.sql(`SELECT count(*)::int AS n FROM ${schema}.records`)).rows[0].n).toBe(2)
  })

  describe("tamper detection", () => {
    const size = 30
    let schema: string
    let storage: PostgresLedger.PostgresStorage
    beforeAll(async () => {
      const path = fresh()
      schema = db.schemaOfPath(path)
      // Sequential appends with a checkpoint every 10 records: checkpoints at 10, 20 and 30.
      await withLedger(path, (ledger) => appendSequentially(ledger, 0, size), { checkpointEvery: 10 })
      await db.sql(`CREATE TABLE ${schema}.pristine AS SELECT * FROM ${schema}.records`)
      await db.sql(`CREATE TABLE ${schema}.pristine_head AS SELECT * FROM ${schema}.head`)
      storage = await Effect.runPromise(PostgresLedger.make(DATABASE_URL, { schema, readOnly: true }))
      return async () => {
        await Effect.runPromise(storage.close)
      }
    })

    /** Applies `sql` (`$S` is the schema), verifies with only the public key, and puts the pristine rows back. */
    const tampered = async (sql: string, values?: ReadonlyArray<unknown>) => {
      await db.sql(sql.replaceAll("$S", schema), values)
      try {
        return await Effect.runPromise(Ledger.verifyStorage(storage, [keys.publicKeyPem]))
      } finally {
        await db.sql(
          `BEGIN;
           DELETE FROM ${schema}.records; INSERT INTO ${schema}.records SELECT * FROM ${schema}.pristine;
           DELETE FROM ${schema}.head; INSERT INTO ${schema}.head SELECT * FROM ${schema}.pristine_head;
           COMMIT`
        )
      }
    }

    it("reports an intact ledger as ok, with every checkpoint verified", async () => {
      expect(await Effect.runPromise(Ledger.verifyStorage(storage, [keys.publicKeyPem]))).toMatchObject({
        ok: true,
        length: size,
        checkpointsVerified: 3
      })
    })

    it("finds the exact record when one character of any of its columns is flipped", async () => {
      const random = prng(20250103)
      const columns = ["kind", "at", "ref", "body", "digest", "prev_hash", "hash"] as const
      const expected: Record<(typeof columns)[number], ReadonlyArray<string>> = {
        kind: ["corrupt-record", "hash-mismatch"],
        at: ["hash-mismatch"],
        ref: ["hash-mismatch"],
        body: ["digest-mismatch"],
        digest: ["digest-mismatch"],
        prev_hash: ["broken-link"],
        hash: ["hash-mismatch"]
      }
      for (let trial = 0; trial < 70; trial++) {
        const k = Math.floor(random() * size)
        const column = columns[Math.floor(random() * columns.length)]!
        const value = (await db.sql(`SELECT ${column} AS v FROM ${schema}.records WHERE idx = $1`, [k])).rows[0].v
        const at = Math.floor(random() * value.length)
        let code = 0
        while (code === 0) code = value.charCodeAt(at) ^ (1 << Math.floor(random() * 7))
        const flipped = value.slice(0, at) + String.fromCharCode(code) + value.slice(at + 1)
        const report = await tampered(`UPDATE $S.records SET ${column} = $1 WHERE idx = $2`, [flipped, k])
        expect(report, `trial ${trial}: ${column} of record ${k}`).toMatchObject({ ok: false, firstBadIndex: k })
        expect(expected[column], `trial ${trial}: ${column} of record ${k}`).toContain(report.failure)
      }
    })

    it("reads a row that cannot be a record as a corrupt position", async () => {
      expect(await tampered("UPDATE $S.records SET kind = 'bogus' WHERE idx = 9")).toMatchObject({
        ok: false,
        firstBadIndex: 9,
        failure: "corrupt-record",
        detail: "row 9 does not hold a ledger record"
      })
    })

    it("finds a deleted row by the gap it leaves", async () => {
      for (const k of [0, 7, size - 2]) {
        expect(await tampered("DELETE FROM $S.records WHERE idx = $1", [k])).toMatchObject({
          ok: false,
          firstBadIndex: k,
          failure: "index-mismatch"
        })
      }
    })

    it("finds two swapped records at the first of them", async () => {
      for (const [i, j] of [
        [3, 4],
        [5, 17],
        [12, size - 1]
      ] as const) {
        const report = await tampered(
          `UPDATE $S.records SET idx = -1 WHERE idx = ${i};
           UPDATE $S.records SET idx = ${i} WHERE idx = ${j};
           UPDATE $S.records SET idx = ${j} WHERE idx = -1`
        )
        expect(report).toMatchObject({ ok: false, firstBadIndex: i })
        expect(["broken-link", "hash-mismatch"]).toContain(report.failure)
      }
    })

    it("detects rows deleted from the tail: against the head row, and against the last checkpoint", async () => {
      for (const cut of [1, 4, 11]) {
        // The head row still counts them.
        expect(await tampered("DELETE FROM $S.records WHERE idx >= $1", [size - cut])).toMatchObject({
          ok: false,
          firstBadIndex: size - cut,
          failure: "corrupt-record",
          detail: `the head row counts ${size} records but the table ends at ${size - cut}`
        })
        // The head row moved back too: the signed checkpoint at 30 still covers them.
        expect(
          await tampered(
            `DELETE FROM $S.records WHERE idx >= ${size - cut};
             UPDATE $S.head SET size = p.idx + 1, hash = p.hash FROM $S.pristine p WHERE p.idx = ${size - cut - 1}`
          )
        ).toMatchObject({ ok: false, length: size - cut, firstBadIndex: size - cut, failure: "truncated" })
      }
    })

    it("finds a row inserted beyond the head row", async () => {
      const report = await tampered(
        `INSERT INTO $S.records SELECT idx + 1, kind, at, ref, body, digest, hash, hash, gen_random_uuid()
         FROM $S.records WHERE idx = ${size - 1}`
      )
      expect(report).toMatchObject({
        ok: false,
        firstBadIndex: size,
        failure: "corrupt-record",
        detail: `row ${size} lies beyond the head row (size ${size})`
      })
    })
  })
})
