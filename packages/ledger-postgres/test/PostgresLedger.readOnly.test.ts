import { Ledger } from "@egl/core"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { PostgresLedger } from "../src/index.ts"
import { appendSequentially, draftOf, ledgerFixture } from "../../../test/support/ledgerFixture.ts"
import { DATABASE_URL, testDatabase } from "./support/database.ts"

const db = testDatabase("ro")
const { fresh, keys, withLedger } = ledgerFixture({
  name: "postgres-ro",
  extension: "pg",
  open: (path) => PostgresLedger.open(DATABASE_URL, { schema: db.schemaOfPath(path) })
})

/** Runs `f` on a read-only open of `schema`. */
const readOnly = <A, E>(schema: string, f: (s: PostgresLedger.PostgresStorage) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(PostgresLedger.open(DATABASE_URL, { schema, readOnly: true }), f)))

const openError = (schema: string) =>
  Effect.runPromise(Effect.flip(PostgresLedger.make(DATABASE_URL, { schema, readOnly: true })))

const exists = async (schema: string) =>
  (await db.sql("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = $1", [schema])).rows[0].n === 1

/** Everything a read-only open could have changed: rows, head and checkpoints. */
const state = async (schema: string) =>
  (
    await db.sql(
      `SELECT (SELECT count(*) FROM ${schema}.records)::int AS records, (SELECT size FROM ${schema}.head)::int AS size,
              (SELECT count(*) FROM ${schema}.checkpoints)::int AS checkpoints,
              (SELECT string_agg(hash, ',' ORDER BY idx) FROM ${schema}.records) AS hashes`
    )
  ).rows[0]

describe("PostgresLedger read-only open", () => {
  it("fails on a missing schema and creates nothing", async () => {
    const schema = db.fresh()
    const error = await openError(schema)
    expect(error._tag).toBe("LedgerUnavailable")
    expect(error.detail).toMatch(
      new RegExp(`\\?schema=${schema}: no ledger in schema "${schema}" \\(a read-only open creates nothing\\)$`)
    )
    expect(await exists(schema)).toBe(false)
  })

  it("refuses a schema that holds something else, and changes nothing in it", async () => {
    const schema = db.fresh()
    await db.sql(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.notes (body text)`)
    expect((await openError(schema)).detail).toMatch(/no ledger in schema/)
    const tables = await db.sql("SELECT tablename FROM pg_tables WHERE schemaname = $1", [schema])
    expect(tables.rows).toEqual([{ tablename: "notes" }])
  })

  it("refuses a ledger of a newer schema version instead of reading it", async () => {
    const path = fresh()
    await withLedger(path, (ledger) => appendSequentially(ledger, 0, 1))
    const schema = db.schemaOfPath(path)
    await db.sql(`UPDATE ${schema}.meta SET value = '99' WHERE key = 'schema_version'`)
    expect((await openError(schema)).detail).toMatch(/schema version 99 is newer than this module supports \(2\)$/)
    await db.sql(`DELETE FROM ${schema}.meta`)
    expect((await openError(schema)).detail).toMatch(/holds no ledger version/)
  })

  it("reads and verifies a ledger, refuses appends and checkpoints, and never writes", async () => {
    const path = fresh()
    const schema = db.schemaOfPath(path)
    const placed = await withLedger(path, (ledger) => appendSequentially(ledger, 0, 5))
    const before = await state(schema)
    await readOnly(schema, (s) =>
      Effect.gen(function* () {
        expect(s.readOnly).toBe(true)
        expect(s.migrated).toEqual([])
        expect(yield* s.head).toEqual({ size: 5, hash: placed[4]!.hash })
        expect(yield* s.read(0, 10)).toEqual(placed)
        expect((yield* s.findRef("env-2")).map((r) => r.index)).toEqual([2])
        expect(yield* Ledger.verifyStorage(s, [keys.publicKeyPem])).toMatchObject({
          ok: true,
          length: 5,
          checkpointsVerified: 1
        })
        const append = yield* Effect.flip(s.append([draftOf(5)]))
        expect(append.detail).toMatch(/read-only; appends and checkpoints are refused/)
        const checkpoint = yield* Effect.flip(
          s.appendCheckpoint({ size: 5, headHash: placed[4]!.hash, at: "", keyId: "", signature: "" })
        )
        expect(checkpoint.detail).toMatch(/read-only/)
      })
    )
    expect(await state(schema)).toEqual(before)
    expect(before).toMatchObject({ records: 5, size: 5, checkpoints: 1 })
  })

  it("verifies beside a live writer that keeps appending and checkpointing", async () => {
    const path = fresh()
    const schema = db.schemaOfPath(path)
    await withLedger(
      path,
      (ledger) =>
        Effect.gen(function* () {
          yield* appendSequentially(ledger, 0, 8)
          yield* Effect.scoped(
            Effect.gen(function* () {
              const reader = yield* PostgresLedger.open(DATABASE_URL, { schema, readOnly: true })
              const verifying = Ledger.verifyStorage(reader, [keys.publicKeyPem])
              const [report] = yield* Effect.all([verifying, appendSequentially(ledger, 8, 40)], {
                concurrency: "unbounded"
              })
              expect(report.ok).toBe(true)
              expect(report.length).toBeGreaterThanOrEqual(8)
              expect((yield* Ledger.verifyStorage(reader, [keys.publicKeyPem])).length).toBe(48)
            })
          )
        }),
      { checkpointEvery: 3 }
    )
  })
})
