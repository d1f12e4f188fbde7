import { copyFileSync, existsSync } from "node:fs"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { SqliteLedger } from "../src/index.ts"
import { appendSequentially, draftOf, ledgerFixture, prng } from "../../../test/support/ledgerFixture.ts"

const { fresh, itGroupCommits, withLedger, withStorage, verifyFile } = ledgerFixture({
  name: "sqlite",
  extension: "db",
  open: (path) => SqliteLedger.open(path)
})

/** Edits the database behind the ledger's back, as someone with file access could. */
const tamper = (file: string, f: (db: Database.Database) => void) => {
  const db = new Database(file)
  try {
    f(db)
  } finally {
    db.close()
  }
}

describe("SqliteLedger", () => {
  it("round-trips appends through read, findRef and head", async () => {
    const file = fresh()
    await withLedger(file, (ledger) =>
      Effect.gen(function* () {
        const first = yield* appendSequentially(ledger, 0, 5)
        const exec = yield* ledger.append(draftOf(5, "env-2", "execution"))
        expect(yield* ledger.head).toEqual({ size: 6, hash: exec.hash })
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
    tamper(file, (db) => {
      expect(db.pragma("journal_mode", { simple: true })).toBe("wal")
      expect(db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()).toBe(
        String(SqliteLedger.SCHEMA_VERSION)
      )
    })
    expect(await verifyFile(file)).toMatchObject({ ok: true, length: 6, checkpointsVerified: 1 })
  })

  it("continues the chain after reopening, and migrating again changes nothing", async () => {
    const file = fresh()
    const first = await withLedger(file, (ledger) => appendSequentially(ledger, 0, 4))
    const second = await withLedger(file, (ledger) =>
      Effect.gen(function* () {
        expect(yield* ledger.head).toEqual({ size: 4, hash: first[3]!.hash })
        return yield* appendSequentially(ledger, 4, 3)
      })
    )
    expect(second.map((r) => r.index)).toEqual([4, 5, 6])
    expect(second[0]!.prevHash).toBe(first[3]!.hash)
    expect(await verifyFile(file)).toMatchObject({ ok: true, length: 7, checkpointsVerified: 2 })
  })

  it("refuses a database written by a newer schema", async () => {
    const file = fresh()
    await withStorage(file, (s) => s.head)
    tamper(file, (db) => db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run())
    const error = await Effect.runPromise(Effect.flip(SqliteLedger.make(file)))
    expect(error.detail).toContain("schema version 99 is newer")
  })

  itGroupCommits(
    "group-commits concurrent appends into fewer transactions, each caller getting its own record",
    (storage) => storage.commits
  )

  it("links after the other connection's records when two connections share the file", async () => {
    const file = fresh()
    await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const a = yield* SqliteLedger.open(file)
          const b = yield* SqliteLedger.open(file)
          for (let i = 0; i < 10; i++) yield* (i % 3 === 0 ? b : a).append([draftOf(i)])
          yield* Effect.all([a.append([draftOf(10), draftOf(11)]), b.append([draftOf(12)])], {
            concurrency: "unbounded"
          })
          expect(yield* a.head).toEqual(yield* b.head)
          expect((yield* a.head).size).toBe(13)
        })
      )
    )
    expect(await verifyFile(file)).toMatchObject({ ok: true, length: 13 })
  })

  it("fails closed with the SQLite message once closed", async () => {
    const file = fresh()
    const storage = await Effect.runPromise(SqliteLedger.make(file))
    await Effect.runPromise(storage.close)
    const error = await Effect.runPromise(Effect.flip(storage.append([draftOf(0)])))
    expect(error._tag).toBe("LedgerUnavailable")
    expect(error.detail).toMatch(/^sqlite:.*not open/)
  })

  describe("tamper detection", () => {
    const size = 30
    let pristine: string
    beforeAll(async () => {
      pristine = fresh()
      // Sequential appends with a checkpoint every 10 records: checkpoints at 10, 20 and 30.
      await withLedger(pristine, (ledger) => appendSequentially(ledger, 0, size), { checkpointEvery: 10 })
    })
    /** A copy of the pristine database (closing the last connection folded the WAL into the main file). */
    const copy = () => {
      expect(existsSync(`${pristine}-wal`)).toBe(false)
      const file = fresh()
      copyFileSync(pristine, file)
      return file
    }

    it("reports an intact ledger as ok, with every checkpoint verified", async () => {
      expect(await verifyFile(pristine)).toMatchObject({ ok: true, length: size, checkpointsVerified: 3 })
    })

    it("finds the exact record when one character of any of its columns is flipped", async () => {
      const random = prng(20250102)
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
        const file = copy()
        const k = Math.floor(random() * size)
        const column = columns[Math.floor(random() * columns.length)]!
        tamper(file, (db) => {
          const value = db.prepare(`SELECT ${column} FROM records WHERE idx = ?`).pluck().get(k) as string
          const at = Math.floor(random() * value.length)
          const flipped =
            value.slice(0, at) +
            String.fromCharCode(value.charCodeAt(at) ^ (1 << Math.floor(random() * 7))) +
            value.slice(at + 1)
          db.prepare(`UPDATE records SET ${column} = ? WHERE idx = ?`).run(flipped, k)
        })
        const report = await verifyFile(file)
        expect(report, `trial ${trial}: ${column} of record ${k}`).toMatchObject({ ok: false, firstBadIndex: k })
        expect(expected[column], `trial ${trial}: ${column} of record ${k}`).toContain(report.failure)
      }
    })

    it("reads a row that cannot be a record as a corrupt position", async () => {
      const file = copy()
      tamper(file, (db) => db.prepare("UPDATE records SET kind = 'bogus' WHERE idx = 9").run())
      expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadIndex: 9, failure: "corrupt-record" })
    })

    it("finds a deleted row by the gap it leaves", async () => {
      for (const k of [0, 7, size - 2]) {
        const file = copy()
        tamper(file, (db) => db.prepare("DELETE FROM records WHERE idx = ?").run(k))
        expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadIndex: k, failure: "index-mismatch" })
      }
    })

    it("finds two swapped records at the first of them", async () => {
      for (const [i, j] of [
        [3, 4],
        [5, 17],
        [12, size - 1]
      ] as const) {
        const file = copy()
        tamper(file, (db) => {
          const get = db.prepare("SELECT kind, at, ref, body, digest, prev_hash, hash FROM records WHERE idx = ?")
          const put = db.prepare(
            `UPDATE records SET kind = @kind, at = @at, ref = @ref, body = @body, digest = @digest,
               prev_hash = @prev_hash, hash = @hash WHERE idx = @idx`
          )
          const [ri, rj] = [get.get(i) as object, get.get(j) as object]
          put.run({ ...rj, idx: i })
          put.run({ ...ri, idx: j })
        })
        const report = await verifyFile(file)
        expect(report).toMatchObject({ ok: false, firstBadIndex: i })
        expect(["broken-link", "hash-mismatch"]).toContain(report.failure)
      }
    })

    it("detects deleted tail rows against the last checkpoint", async () => {
      for (const cut of [1, 4, 11]) {
        const file = copy()
        tamper(file, (db) => db.prepare("DELETE FROM records WHERE idx >= ?").run(size - cut))
        expect(await verifyFile(file)).toMatchObject({
          ok: false,
          length: size - cut,
          firstBadIndex: size - cut,
          failure: "truncated"
        })
      }
    })
  })
})
