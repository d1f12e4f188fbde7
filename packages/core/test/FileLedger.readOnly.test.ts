import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as FileLedger from "../src/FileLedger.ts"
import * as Ledger from "../src/Ledger.ts"
import { appendSequentially, draftOf, ledgerFixture } from "../../../test/support/ledgerFixture.ts"

const { fresh, keys, withLedger } = ledgerFixture({ name: "file-ro", extension: "jsonl", open: FileLedger.open })

/** Runs `f` on a read-only open of `file`. */
const readOnly = <A, E>(file: string, f: (s: FileLedger.FileStorage) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.scoped(Effect.flatMap(FileLedger.open(file, { readOnly: true }), f)))

const bytesOf = (file: string) => [readFileSync(file), readFileSync(`${file}.checkpoints`)]

describe("FileLedger read-only open", () => {
  it("fails on a missing ledger and creates nothing", async () => {
    const file = fresh()
    const before = readdirSync(dirname(file))
    const error = await Effect.runPromise(Effect.flip(FileLedger.make(file, { readOnly: true })))
    expect(error._tag).toBe("LedgerUnavailable")
    expect(error.detail).toContain("no ledger at this path")
    expect(existsSync(file)).toBe(false)
    expect(existsSync(`${file}.checkpoints`)).toBe(false)
    expect(existsSync(`${file}.lock`)).toBe(false)
    expect(readdirSync(dirname(file))).toEqual(before)
  })

  it("reads and verifies an existing ledger, refuses appends and checkpoints, and changes no byte", async () => {
    const file = fresh()
    const placed = await withLedger(file, (ledger) => appendSequentially(ledger, 0, 5))
    const before = bytesOf(file)
    await readOnly(file, (s) =>
      Effect.gen(function* () {
        expect(s.readOnly).toBe(true)
        expect(yield* s.head).toEqual({ size: 5, hash: placed[4]!.hash })
        expect(yield* s.read(0, 10)).toEqual(placed)
        expect((yield* s.findRef("env-3")).map((r) => r.index)).toEqual([3])
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
    expect(bytesOf(file)).toEqual(before)
    expect(existsSync(`${file}.lock`)).toBe(false)
  })

  it("opens beside a writer that holds the lock, and serves the prefix present when it opened", async () => {
    const file = fresh()
    await withLedger(file, (ledger, writer) =>
      Effect.gen(function* () {
        const first = yield* appendSequentially(ledger, 0, 4)
        yield* ledger.checkpoint
        expect(existsSync(`${file}.lock`)).toBe(true)
        yield* Effect.scoped(
          Effect.gen(function* () {
            const reader = yield* FileLedger.open(file, { readOnly: true })
            // The writer keeps appending and checkpointing while the reader holds its view.
            yield* appendSequentially(ledger, 4, 3)
            yield* ledger.checkpoint
            expect((yield* writer.head).size).toBe(7)
            expect(yield* reader.head).toEqual({ size: 4, hash: first[3]!.hash })
            expect(yield* Ledger.verifyStorage(reader, [keys.publicKeyPem])).toMatchObject({
              ok: true,
              length: 4,
              checkpointsVerified: 1,
              headHash: first[3]!.hash
            })
          })
        )
        // The reader's close released nothing of the writer's.
        expect(existsSync(`${file}.lock`)).toBe(true)
        yield* ledger.append(draftOf(7))
      })
    )
    await readOnly(file, (s) =>
      Effect.map(Ledger.verifyStorage(s, [keys.publicKeyPem]), (report) =>
        expect(report).toMatchObject({ ok: true, length: 8 })
      )
    )
  })

  it("leaves an incomplete last line (a write in progress) in place and reads the lines before it", async () => {
    const file = fresh()
    const placed = await withLedger(file, (ledger) => appendSequentially(ledger, 0, 3))
    appendFileSync(file, '{"index":3,"kind":"decision"')
    const size = statSync(file).size
    await readOnly(file, (s) =>
      Effect.gen(function* () {
        expect(s.recoveredBytes).toBe(28)
        expect(yield* s.head).toEqual({ size: 3, hash: placed[2]!.hash })
        expect(yield* Ledger.verifyStorage(s, [keys.publicKeyPem])).toMatchObject({ ok: true, length: 3 })
      })
    )
    expect(statSync(file).size).toBe(size)
  })

  it("reads a ledger without a checkpoint file as one without checkpoints", async () => {
    const file = fresh()
    await withLedger(file, (ledger) => appendSequentially(ledger, 0, 2))
    rmSync(`${file}.checkpoints`)
    await readOnly(file, (s) =>
      Effect.gen(function* () {
        expect(yield* s.checkpoints).toEqual([])
        expect(yield* Ledger.verifyStorage(s, [keys.publicKeyPem])).toMatchObject({
          ok: true,
          length: 2,
          checkpointsVerified: 0
        })
      })
    )
    expect(existsSync(`${file}.checkpoints`)).toBe(false)
  })

  it("reports a tampered record at its index", async () => {
    const file = fresh()
    await withLedger(file, (ledger) => appendSequentially(ledger, 0, 6))
    const lines = readFileSync(file, "utf8").split("\n")
    lines[2] = lines[2]!.replace("payload text", "payload texT")
    writeFileSync(file, lines.join("\n"))
    await readOnly(file, (s) =>
      Effect.map(Ledger.verifyStorage(s, [keys.publicKeyPem]), (report) =>
        expect(report).toMatchObject({ ok: false, firstBadIndex: 2, failure: "digest-mismatch" })
      )
    )
  })
})
