import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import Database from "better-sqlite3"
import { Ledger } from "@egl/core"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { SqliteLedger } from "../src/index.ts"
import { appendSequentially, draftOf, ledgerFixture } from "../../../test/support/ledgerFixture.ts"

const { fresh, keys, withLedger } = ledgerFixture({
  name: "sqlite-ro",
  extension: "db",
  open: (path) => SqliteLedger.open(path)
})

/** Runs `f` on a read-only open of `file`. */
const readOnly = <A, E>(file: string, f: (s: SqliteLedger.SqliteStorage) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(SqliteLedger.open(file, { readOnly: true }), f)))

const openError = (file: string) => Effect.runPromise(Effect.flip(SqliteLedger.make(file, { readOnly: true })))

describe("SqliteLedger read-only open", () => {
  it("fails on a missing database and creates nothing", async () => {
    const file = fresh()
    const before = readdirSync(dirname(file))
    const error = await openError(file)
    expect(error._tag).toBe("LedgerUnavailable")
    expect(error.detail).toBe(`sqlite:${file}: no ledger at this path (a read-only open creates nothing)`)
    expect(existsSync(file)).toBe(false)
    expect(readdirSync(dirname(file))).toEqual(before)
  })

  it("refuses a file that is not a ledger database, and changes nothing in it", async () => {
    const text = fresh()
    writeFileSync(text, "not a database\n")
    expect((await openError(text)).detail).toMatch(/file is not a database/)
    expect(readFileSync(text, "utf8")).toBe("not a database\n")

    const other = fresh()
    const db = new Database(other)
    db.exec("CREATE TABLE notes (body TEXT)")
    db.close()
    expect((await openError(other)).detail).toMatch(/not a ledger database \(no ledger schema\)/)
    const check = new Database(other, { readonly: true })
    expect(check.prepare("SELECT name FROM sqlite_master").pluck().all()).toEqual(["notes"])
    check.close()
  })

  it("refuses a ledger of another schema version instead of migrating it", async () => {
    const file = fresh()
    await withLedger(file, (ledger) => appendSequentially(ledger, 0, 1))
    const db = new Database(file)
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run()
    db.close()
    expect((await openError(file)).detail).toMatch(/schema version 99 is not the one this module reads/)
  })

  it("reads and verifies a ledger, refuses appends and checkpoints, and never writes the database", async () => {
    const file = fresh()
    const placed = await withLedger(file, (ledger) => appendSequentially(ledger, 0, 5))
    const before = readFileSync(file)
    await readOnly(file, (s) =>
      Effect.gen(function* () {
        expect(s.readOnly).toBe(true)
        expect(yield* s.head).toEqual({ size: 5, hash: placed[4]!.hash })
        expect(yield* s.read(0, 10)).toEqual(placed)
        expect((yield* s.findRef("env-2")).map((r) => r.index)).toEqual([2])
        expect(yield* Ledger.verifyStorage(s, [keys.publicKeyPem])).toMatchObject({
          ok: true,
          length: 5,
          checkpointsVerified: 1
        })
        const append = yield* Effect.flip(s.append([draftOf(5)]))
        expect(append.detail).toMatch(/read-only; appends are refused/)
        const checkpoint = yield* Effect.flip(
          s.appendCheckpoint({ size: 5, headHash: placed[4]!.hash, at: "", keyId: "", signature: "" })
        )
        expect(checkpoint.detail).toMatch(/read-only/)
      })
    )
    expect(readFileSync(file)).toEqual(before)
    const db = new Database(file, { readonly: true })
    expect(db.prepare("SELECT count(*) FROM records").pluck().get()).toBe(5)
    expect(db.prepare("SELECT count(*) FROM checkpoints").pluck().get()).toBe(1)
    db.close()
  })

  it("verifies beside a live writer that keeps appending and checkpointing", async () => {
    const file = fresh()
    await withLedger(
      file,
      (ledger) =>
        Effect.gen(function* () {
          yield* appendSequentially(ledger, 0, 8)
          yield* Effect.scoped(
            Effect.gen(function* () {
              const reader = yield* SqliteLedger.open(file, { readOnly: true })
              const verifying = Ledger.verifyStorage(reader, [keys.publicKeyPem], { pageSize: 2 })
              const [report] = yield* Effect.all([verifying, appendSequentially(ledger, 8, 8)], {
                concurrency: "unbounded"
              })
              expect(report.ok).toBe(true)
              expect(report.length).toBeGreaterThanOrEqual(8)
              expect((yield* Ledger.verifyStorage(reader, [keys.publicKeyPem])).length).toBe(16)
            })
          )
        }),
      { checkpointEvery: 3 }
    )
  })
})
