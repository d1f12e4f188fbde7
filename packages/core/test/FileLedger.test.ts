import { spawn } from "node:child_process"
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  readFileSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import * as FileLedger from "../src/FileLedger.ts"
import * as Ledger from "../src/Ledger.ts"
import { appendSequentially, draftOf, ledgerFixture, prng } from "../../../test/support/ledgerFixture.ts"

const { fresh, itGroupCommits, withLedger, withStorage, verifyFile } = ledgerFixture({
  name: "file",
  extension: "jsonl",
  open: FileLedger.open
})

const lines = (file: string) => readFileSync(file, "utf8").split("\n").slice(0, -1)
const writeLines = (file: string, ls: ReadonlyArray<string>) => writeFileSync(file, ls.map((l) => `${l}\n`).join(""))

/** Copies a ledger (records and checkpoints) so each tamper starts from the same pristine state. */
const copyLedger = (from: string) => {
  const to = fresh()
  copyFileSync(from, to)
  copyFileSync(`${from}.checkpoints`, `${to}.checkpoints`)
  return to
}

describe("FileLedger", () => {
  it("round-trips appends through read, findRef and head, one JSON line per record", async () => {
    const file = fresh()
    const placed = await withLedger(file, (ledger) =>
      Effect.gen(function* () {
        const first = yield* appendSequentially(ledger, 0, 5)
        const exec = yield* ledger.append(draftOf(5, "env-2", "execution"))
        const head = yield* ledger.head
        const stored = yield* ledger.read(0, 100)
        const history = yield* ledger.history("env-2")
        const page = yield* ledger.read(2, 2)
        expect(head).toEqual({ size: 6, hash: exec.hash })
        expect(stored).toEqual([...first, exec])
        expect(history.map((r) => [r.index, r.kind])).toEqual([
          [2, "decision"],
          [5, "execution"]
        ])
        expect(page.map((r) => r.index)).toEqual([2, 3])
        expect(yield* ledger.read(6, 10)).toEqual([])
        expect(yield* ledger.history("nobody")).toEqual([])
        return [...first, exec]
      })
    )
    expect(lines(file).map((l) => JSON.parse(l))).toEqual(placed)
    expect(existsSync(`${file}.lock`)).toBe(false)
    const report = await verifyFile(file)
    expect(report).toMatchObject({ ok: true, length: 6, checkpointsVerified: 1, headHash: placed[5]!.hash })
  })

  it("continues the chain after reopening", async () => {
    const file = fresh()
    const first = await withLedger(file, (ledger) => appendSequentially(ledger, 0, 4))
    const second = await withLedger(file, (ledger, storage) =>
      Effect.gen(function* () {
        expect(storage.recoveredBytes).toBe(0)
        expect(yield* ledger.head).toEqual({ size: 4, hash: first[3]!.hash })
        expect((yield* ledger.history("env-1")).map((r) => r.hash)).toEqual([first[1]!.hash])
        return yield* appendSequentially(ledger, 4, 3)
      })
    )
    expect(second.map((r) => r.index)).toEqual([4, 5, 6])
    expect(second[0]!.prevHash).toBe(first[3]!.hash)
    expect(await verifyFile(file)).toMatchObject({ ok: true, length: 7, checkpointsVerified: 2 })
  })

  itGroupCommits(
    "group-commits concurrent appends into fewer durable writes, each caller getting its own record",
    (storage) => storage.commits
  )

  it("serializes concurrent appends made directly on the storage", async () => {
    const file = fresh()
    const batches = await withStorage(file, (s) =>
      Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => s.append([draftOf(i * 2), draftOf(i * 2 + 1)]),
        { concurrency: "unbounded" }
      )
    )
    expect(
      batches
        .flat()
        .map((r) => r.index)
        .sort((a, b) => a - b)
    ).toEqual(Array.from({ length: 40 }, (_, i) => i))
    expect(await verifyFile(file)).toMatchObject({ ok: true, length: 40 })
  })

  it("finishes an append whose caller stopped waiting, so the next append links after it", async () => {
    const file = fresh()
    await withStorage(file, (s) =>
      Effect.gen(function* () {
        const batch = Array.from({ length: 200 }, (_, i) => draftOf(i))
        yield* Effect.exit(Effect.timeout(s.append(batch), 0))
        const [next] = yield* s.append([draftOf(200)])
        expect(next!.index).toBe(200)
      })
    )
    expect(await verifyFile(file)).toMatchObject({ ok: true, length: 201 })
  })

  describe("tamper detection", () => {
    const size = 30
    let pristine: string
    beforeAll(async () => {
      pristine = fresh()
      // Sequential appends with a checkpoint every 10 records: checkpoints at 10, 20 and 30.
      await withLedger(pristine, (ledger) => appendSequentially(ledger, 0, size), { checkpointEvery: 10 })
    })

    it("reports an intact ledger as ok, with every checkpoint verified", async () => {
      expect(await verifyFile(pristine)).toMatchObject({ ok: true, length: size, checkpointsVerified: 3 })
    })

    it("finds the exact record when one byte of its body or hash is flipped", async () => {
      const random = prng(20250101)
      for (let trial = 0; trial < 60; trial++) {
        const file = copyLedger(pristine)
        const ls = lines(file)
        const k = Math.floor(random() * size)
        const field = random() < 0.5 ? "body" : "hash"
        const line = ls[k]!
        // Value bounds inside the line: records are written with fields in a fixed order, ASCII only here.
        const start = line.indexOf(`"${field}":"`) + field.length + 4
        const stop = field === "body" ? line.indexOf(`","digest":"`) : line.length - 2
        const at = start + Math.floor(random() * (stop - start))
        const flipped = String.fromCharCode(line.charCodeAt(at) ^ (1 << Math.floor(random() * 7)))
        ls[k] = line.slice(0, at) + flipped + line.slice(at + 1)
        writeLines(file, ls)
        const report = await verifyFile(file)
        expect(report.ok, `trial ${trial}: ${field} of record ${k} at ${at}`).toBe(false)
        expect(report.firstBadIndex, `trial ${trial}: ${field} of record ${k} at ${at} -> ${report.failure}`).toBe(k)
        expect(["corrupt-record", "digest-mismatch", "hash-mismatch"]).toContain(report.failure)
      }
    })

    it("finds the exact record when any byte of its line is flipped", async () => {
      const random = prng(20250103)
      for (let trial = 0; trial < 200; trial++) {
        const file = copyLedger(pristine)
        const ls = lines(file)
        const k = Math.floor(random() * size)
        const line = ls[k]!
        const at = Math.floor(random() * line.length)
        // Any bit of the low seven: the byte stays ASCII, and may become a quote, a brace or a newline.
        const flipped = String.fromCharCode(line.charCodeAt(at) ^ (1 << Math.floor(random() * 7)))
        ls[k] = line.slice(0, at) + flipped + line.slice(at + 1)
        writeLines(file, ls)
        const report = await verifyFile(file)
        expect(report.ok, `trial ${trial}: record ${k}, byte ${at}`).toBe(false)
        expect(report.firstBadIndex, `trial ${trial}: record ${k}, byte ${at} -> ${report.failure}`).toBe(k)
      }
    })

    it("finds a deleted record", async () => {
      for (const k of [0, 7, size - 2]) {
        const file = copyLedger(pristine)
        writeLines(
          file,
          lines(file).filter((_, i) => i !== k)
        )
        expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadIndex: k, failure: "index-mismatch" })
      }
    })

    it("finds two swapped records at the first of them", async () => {
      for (const [i, j] of [
        [3, 4],
        [5, 17],
        [12, size - 1]
      ] as const) {
        const file = copyLedger(pristine)
        const ls = lines(file)
        ;[ls[i], ls[j]] = [ls[j]!, ls[i]!]
        writeLines(file, ls)
        expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadIndex: i, failure: "index-mismatch" })
      }
    })

    it("detects a cut tail against the last checkpoint", async () => {
      for (const cut of [1, 4, 11]) {
        const file = copyLedger(pristine)
        writeLines(file, lines(file).slice(0, size - cut))
        expect(await verifyFile(file)).toMatchObject({
          ok: false,
          length: size - cut,
          firstBadIndex: size - cut,
          failure: "truncated"
        })
      }
    })

    it("keeps a garbled line in the middle and reads it back as a corrupt record", async () => {
      const file = copyLedger(pristine)
      const ls = lines(file)
      ls[12] = "{not json"
      writeLines(file, ls)
      const before = readFileSync(file)
      await withStorage(file, (s) =>
        Effect.gen(function* () {
          expect(s.recoveredBytes).toBe(0)
          const [record] = yield* s.read(12, 1)
          expect(record !== undefined && Ledger.isCorrupt(record) && record.index === 12).toBe(true)
          expect((yield* s.head).size).toBe(size)
        })
      )
      expect(readFileSync(file).equals(before)).toBe(true)
      expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadIndex: 12, failure: "corrupt-record" })
    })

    it("refuses to extend a chain whose last line is garbled", async () => {
      const file = copyLedger(pristine)
      const ls = lines(file)
      ls[size - 1] = ls[size - 1]!.slice(0, 40)
      writeLines(file, ls)
      const error = await withStorage(file, (s) => Effect.flip(s.append([draftOf(99)])))
      expect(error.detail).toMatch(/last record .* corrupt/)
      expect(await verifyFile(file)).toMatchObject({ ok: false, firstBadIndex: size - 1, failure: "corrupt-record" })
    })
  })

  it("cuts a torn tail on open and keeps every complete record", async () => {
    const file = fresh()
    const placed = await withLedger(file, (ledger) => appendSequentially(ledger, 0, 8))
    const cleanSize = statSync(file).size
    const cleanCheckpoints = statSync(`${file}.checkpoints`).size
    const torn = JSON.stringify({ ...placed[7]!, index: 8 }).slice(0, 57)
    appendFileSync(file, torn)
    appendFileSync(`${file}.checkpoints`, '{"size":9,"headHash":"ab')
    const more = await withLedger(file, (ledger, storage) =>
      Effect.gen(function* () {
        expect(storage.recoveredBytes).toBe(torn.length)
        expect(yield* ledger.head).toEqual({ size: 8, hash: placed[7]!.hash })
        return yield* ledger.append(draftOf(8))
      })
    )
    expect(more.index).toBe(8)
    expect(statSync(file).size).toBeGreaterThan(cleanSize)
    expect(readFileSync(file, "utf8").startsWith(placed.map((r) => JSON.stringify(r) + "\n").join(""))).toBe(true)
    expect(statSync(`${file}.checkpoints`).size).toBeGreaterThan(cleanCheckpoints)
    expect(await verifyFile(file)).toMatchObject({ ok: true, length: 9, checkpointsVerified: 2 })
  })

  describe("writer lock", () => {
    it("refuses a second writer while the first holds the lock, and releases it on close", async () => {
      const file = fresh()
      await withStorage(file, () =>
        Effect.gen(function* () {
          const error = yield* Effect.flip(FileLedger.make(file))
          expect(error.detail).toContain(`locked by process ${process.pid} (this process)`)
        })
      )
      expect(existsSync(`${file}.lock`)).toBe(false)
      await withStorage(file, (s) => s.head)
    })

    it("refuses a lock held by another live process, and takes it over once that process is dead", async () => {
      const file = fresh()
      const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" })
      const exited = new Promise((resolve) => holder.once("exit", resolve))
      writeFileSync(`${file}.lock`, `${holder.pid} some-token\n`)
      const error = await Effect.runPromise(Effect.flip(FileLedger.make(file)))
      expect(error.detail).toContain(`locked by process ${holder.pid} (`)
      holder.kill("SIGKILL")
      await exited
      await withStorage(file, (s) =>
        Effect.gen(function* () {
          expect(readFileSync(`${file}.lock`, "utf8")).toMatch(new RegExp(`^${process.pid} `))
          yield* s.append([draftOf(0)])
        })
      )
      expect(existsSync(`${file}.lock`)).toBe(false)
    })

    it("takes over a lock naming this process's pid that this process does not hold (a restarted container)", async () => {
      const file = fresh()
      writeFileSync(`${file}.lock`, `${process.pid} token-of-an-earlier-incarnation\n`)
      await withStorage(file, (s) => s.head)
      expect(existsSync(`${file}.lock`)).toBe(false)
    })

    it("takes over a lock left without a pid once it is old enough", async () => {
      const file = fresh()
      writeFileSync(`${file}.lock`, "")
      const error = await Effect.runPromise(Effect.flip(FileLedger.make(file)))
      expect(error.detail).toContain("still creating the lock")
      utimesSync(`${file}.lock`, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
      await withStorage(file, (s) => s.head)
    })
  })

  it.runIf(existsSync("/dev/full"))("fails closed when a write fails and cannot be undone", async () => {
    // /dev/full refuses every write (ENOSPC) and cannot be truncated (EINVAL): both failure paths in one device.
    const file = fresh()
    symlinkSync("/dev/full", file)
    await withStorage(file, (s) =>
      Effect.gen(function* () {
        const first = yield* Effect.flip(s.append([draftOf(0)]))
        expect(first.detail).toMatch(/write failed.*could not be removed.*refusing appends until reopened/)
        const second = yield* Effect.flip(s.append([draftOf(1)]))
        expect(second.detail).toBe(first.detail)
        expect(yield* s.head).toEqual(Ledger.EMPTY_HEAD)
      })
    )
  })
})
