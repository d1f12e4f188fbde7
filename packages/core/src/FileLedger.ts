/**
 * The JSONL file ledger backend: one record per line, signed checkpoints in a `<file>.checkpoints` sidecar, one
 * writer at a time (an exclusive `<file>.lock` holding the writer's pid; a lock whose process is gone is taken over).
 *
 * An append writes the whole batch with one `write` and resolves only after `fdatasync`, so the service's group
 * commit costs one sync per batch. A write that fails is cut back off the file; if even that fails the storage
 * refuses every later append until it is reopened, since the bytes on disk are then unknown.
 *
 * Opening scans the file once and keeps only line offsets (8 bytes a record) and a ref index (one entry per distinct
 * ref) in memory; reads stream from disk. A last line without its newline is a batch a crash interrupted, never
 * acknowledged, so opening cuts it away ({@link FileStorage.recoveredBytes}). A garbled complete line is evidence,
 * not debris: it stays, and reads return it as a `CorruptRecord` so verification reports it. When the last line is
 * garbled or out of place there is no trustworthy head, so the storage opens for reading and verification but refuses
 * appends and checkpoints; a garbled checkpoint line makes `checkpoints` fail the same way.
 *
 * A read-only open (`{ readOnly: true }`, what `egl ledger verify` uses) creates, cuts and locks nothing, so it works
 * beside a running writer: it reads the checkpoints, then the records, once, and serves that prefix (an incomplete last
 * line is a write in progress and is left alone); every append is refused.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { FileLedger, Sealer } from "@egl/core"
 *
 * const LedgerLive = FileLedger.layer("/var/lib/egl/ledger.jsonl").pipe(Layer.provide(Sealer.Sealer.layerGenerated))
 * ```
 * @module
 */
import * as fs from "node:fs"
import { releaseLock, takeLock } from "./internal/fileLock.ts"
import type { FileHandle } from "node:fs/promises"
import * as path from "node:path"
import { randomUUID } from "node:crypto"
import { Effect, Exit, Fiber, type Layer, Schema, Scope, Semaphore } from "effect"
import {
  Checkpoint,
  EMPTY_HEAD,
  isCorrupt,
  Ledger,
  LedgerRecordSchema,
  LedgerUnavailable,
  link,
  type Head,
  type LedgerOptions,
  type LedgerRecord,
  type LedgerStorage,
  type RecordDraft,
  type StoredRecord
} from "./Ledger.ts"
import type { Sealer } from "./Sealer.ts"

/** A file ledger storage, with what opening and writing it did. */
export interface FileStorage extends LedgerStorage {
  /** Path of the JSONL record file. */
  readonly path: string
  /**
   * Bytes of an interrupted, unacknowledged tail cut from the record file when it was opened (0 after a clean stop);
   * opened read-only, the bytes of an incomplete last line that were left in place and not read.
   */
  readonly recoveredBytes: number
  /** True when opened with `readOnly`: appends and checkpoints are refused. */
  readonly readOnly: boolean
  /** Durable record writes (one `write` + `fdatasync` each) since opening: fewer than appends when group commit works. */
  readonly commits: number
}

/** Options of {@link make}. */
export interface Options {
  /**
   * Open an existing ledger for reading and verification only: nothing is created, cut or locked (a writer may hold
   * the lock and keep appending), and appends fail. A missing record file is a {@link LedgerUnavailable}.
   */
  readonly readOnly?: boolean | undefined
}

/**
 * Opens (creating if needed) the ledger at `file` and takes its writer lock; the caller must run `close`.
 * Fails with {@link LedgerUnavailable} when another live process holds the lock or the files cannot be opened.
 * With `readOnly`, opens an existing ledger without taking the lock (see {@link Options}).
 *
 * @example
 * ```ts
 * // Verify a ledger another process may be writing, with only the public key.
 * const report = yield* Effect.acquireUseRelease(
 *   FileLedger.make("ledger.jsonl", { readOnly: true }),
 *   (storage) => Ledger.verifyStorage(storage, [publicKeyPem]),
 *   (storage) => storage.close
 * )
 * ```
 */
export const make = (file: string, options?: Options): Effect.Effect<FileStorage, LedgerUnavailable> =>
  Effect.gen(function* () {
    const readOnly = options?.readOnly === true
    const scope = yield* Scope.make()
    return yield* (readOnly ? buildReadOnly(file) : build(file)).pipe(
      Scope.provide(scope),
      Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))),
      Effect.map((parts) => storage(file, parts, scope, readOnly))
    )
  })

/** {@link make} with `close` tied to the current scope. */
export const open = (file: string, options?: Options): Effect.Effect<FileStorage, LedgerUnavailable, Scope.Scope> =>
  Effect.acquireRelease(make(file, options), (s) => s.close)

/**
 * The {@link Ledger} service over the ledger at `file` (requires a {@link Sealer} for checkpoints).
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const ledger = yield* Ledger.Ledger
 *   yield* ledger.append(Ledger.draft("decision", new Date().toISOString(), "env-1", '{"ok":true}'))
 * }).pipe(Effect.provide(FileLedger.layer("ledger.jsonl").pipe(Layer.provide(Sealer.Sealer.layerGenerated))))
 * ```
 */
export const layer = (file: string, options?: LedgerOptions): Layer.Layer<Ledger, LedgerUnavailable, Sealer> =>
  Ledger.layerStorage(make(file), options)

// ---------------------------------------------------------------------------------------------------------------------

/** Bytes read per step when scanning the file at open. */
const SCAN_CHUNK = 1 << 20
/** Most bytes one `read` call pulls from disk; a page is cut short rather than buffered whole. */
const MAX_READ_BYTES = 8 << 20

const unavailable = (file: string, what: string, cause?: unknown) =>
  new LedgerUnavailable({ detail: `file:${file}: ${what}${cause === undefined ? "" : `: ${messageOf(cause)}`}` })

const messageOf = (cause: unknown): string => {
  if (cause instanceof Error) return cause.message
  if (typeof cause === "object" && cause !== null && "cause" in cause) return messageOf(cause.cause)
  return String(cause)
}

/** Line start offsets of the record file; Float64 because offsets pass 2^32 long before records pass 2^53. */
class LineIndex {
  private offsets = new Float64Array(1024)
  count = 0
  push(offset: number) {
    if (this.count === this.offsets.length) {
      const grown = new Float64Array(this.offsets.length * 2)
      grown.set(this.offsets)
      this.offsets = grown
    }
    this.offsets[this.count++] = offset
  }
  at(i: number): number {
    return this.offsets[i]!
  }
}

/** An append-only file and the length of its durable, acknowledged prefix. */
interface Journal {
  readonly file: string
  readonly handle: FileHandle
  end: number
  /** Set when the file may hold bytes past `end` that could not be removed, or the tail cannot be extended. */
  failed: LedgerUnavailable | undefined
}

interface Parts {
  readonly records: Journal
  /** Absent when opened read-only and the ledger has no checkpoint file yet. */
  readonly checkpoints: Journal | undefined
  readonly index: LineIndex
  readonly refs: Map<string, number | Array<number>>
  readonly head: Head
  readonly stored: Array<Checkpoint>
  readonly checkpointError: LedgerUnavailable | undefined
  readonly recoveredBytes: number
}

const build = (file: string): Effect.Effect<Parts, LedgerUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const lockFile = `${file}.lock`
    const token = `${process.pid} ${randomUUID()}\n`
    yield* Effect.acquireRelease(
      Effect.try({
        try: () => takeLock(lockFile, token),
        catch: (e) => unavailable(file, "cannot take the writer lock", e)
      }).pipe(
        Effect.flatMap((holder) =>
          holder === undefined
            ? Effect.void
            : Effect.fail(unavailable(file, `locked by ${holder} (${lockFile}); one writer at a time`))
        )
      ),
      () => Effect.sync(() => releaseLock(lockFile, token))
    )
    const recordsHandle = yield* openJournal(file)
    const checkpointsHandle = yield* openJournal(`${file}.checkpoints`)
    const scan = yield* Effect.try({
      try: () => scanRecords(recordsHandle.fd),
      catch: (e) => unavailable(file, "cannot read the record file", e)
    })
    const cps = yield* Effect.try({
      try: () => readCheckpoints(checkpointsHandle.fd),
      catch: (e) => unavailable(`${file}.checkpoints`, "cannot read the checkpoint file", e)
    })
    yield* Effect.try({
      try: () => {
        cutTail(recordsHandle.fd, scan.end, scan.size)
        cutTail(checkpointsHandle.fd, cps.end, cps.size)
      },
      catch: (e) => unavailable(file, "cannot cut an interrupted tail", e)
    })
    return partsOf(file, recordsHandle, checkpointsHandle, scan, cps)
  })

/**
 * Opens an existing ledger for reading: no lock, no `O_CREAT`, no cut tail. Checkpoints are read before records, so
 * with a writer appending meanwhile every checkpoint read covers records that are already on disk when they are read.
 */
const buildReadOnly = (file: string): Effect.Effect<Parts, LedgerUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const recordsHandle = yield* openReadOnly(file)
    if (recordsHandle === undefined)
      return yield* unavailable(file, "no ledger at this path (a read-only open creates nothing)")
    const checkpointsHandle = yield* openReadOnly(`${file}.checkpoints`)
    const cps =
      checkpointsHandle === undefined
        ? { checkpoints: [], corruptLine: undefined, end: 0, size: 0 }
        : yield* Effect.try({
            try: () => readCheckpoints(checkpointsHandle.fd),
            catch: (e) => unavailable(`${file}.checkpoints`, "cannot read the checkpoint file", e)
          })
    const scan = yield* Effect.try({
      try: () => scanRecords(recordsHandle.fd),
      catch: (e) => unavailable(file, "cannot read the record file", e)
    })
    return partsOf(file, recordsHandle, checkpointsHandle, scan, cps)
  })

/** The parts of an opened ledger from its scanned files; a chain whose last line is not trustworthy refuses appends. */
const partsOf = (
  file: string,
  recordsHandle: FileHandle,
  checkpointsHandle: FileHandle | undefined,
  scan: Scan,
  cps: ReturnType<typeof readCheckpoints>
): Parts => {
  const records: Journal = { file, handle: recordsHandle, end: scan.end, failed: undefined }
  let head: Head = EMPTY_HEAD
  const last = scan.last
  if (last !== undefined) {
    const position = scan.index.count - 1
    if (isCorrupt(last)) {
      records.failed = unavailable(
        file,
        `the last record (line ${position + 1}) is corrupt; the chain cannot be extended`
      )
      head = { size: scan.index.count, hash: scan.lastGoodHash }
    } else {
      head = { size: scan.index.count, hash: last.hash }
      if (last.index !== position) {
        records.failed = unavailable(
          file,
          `the last line holds record ${last.index} at position ${position}; the chain cannot be extended`
        )
      }
    }
  }
  return {
    records,
    checkpoints:
      checkpointsHandle === undefined
        ? undefined
        : { file: `${file}.checkpoints`, handle: checkpointsHandle, end: cps.end, failed: undefined },
    index: scan.index,
    refs: scan.refs,
    head,
    stored: cps.checkpoints,
    checkpointError:
      cps.corruptLine === undefined
        ? undefined
        : unavailable(`${file}.checkpoints`, `line ${cps.corruptLine} is not a checkpoint`),
    recoveredBytes: scan.size - scan.end
  }
}

const openJournal = (file: string): Effect.Effect<FileHandle, LedgerUnavailable, Scope.Scope> =>
  Effect.gen(function* () {
    const existed = yield* Effect.sync(() => fs.existsSync(file))
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => fs.promises.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644),
        catch: (e) => unavailable(file, "cannot open", e)
      }),
      // FileHandle.close waits for reads still in flight, so closing never pulls a descriptor from under them.
      (h) => Effect.promise(() => h.close().catch(() => undefined))
    )
    // A new file's directory entry must be durable too, or a crash can lose the file along with its synced records.
    if (!existed) {
      yield* Effect.try({
        try: () => syncDirectory(path.dirname(file)),
        catch: (e) => unavailable(file, "cannot sync its directory", e)
      })
    }
    return handle
  })

/** Opens a file for reading only, or `undefined` when there is no such file. */
const openReadOnly = (file: string): Effect.Effect<FileHandle | undefined, LedgerUnavailable, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        fs.promises
          .open(file, fs.constants.O_RDONLY)
          .catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? undefined : Promise.reject(e))),
      catch: (e) => unavailable(file, "cannot open", e)
    }),
    (h) => (h === undefined ? Effect.void : Effect.promise(() => h.close().catch(() => undefined)))
  )

const syncDirectory = (dir: string) => {
  const fd = fs.openSync(dir, "r")
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

const cutTail = (fd: number, end: number, size: number) => {
  if (size > end) {
    fs.ftruncateSync(fd, end)
    fs.fdatasyncSync(fd)
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Decoding

const isRecordShape = Schema.is(LedgerRecordSchema)
const isCheckpoint = Schema.is(Checkpoint)

const corrupt = (index: number, detail: string): StoredRecord => ({ _corrupt: true, index, detail })

const decodeLine = (line: string, position: number): StoredRecord => {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return corrupt(position, `line ${position + 1} is not valid JSON`)
  }
  if (!isRecordShape(value)) return corrupt(position, `line ${position + 1} is not a ledger record`)
  const { index, kind, at, ref, body, digest, prevHash, hash } = value
  return { index, kind, at, ref, body, digest, prevHash, hash }
}

const encodeRecord = (r: LedgerRecord): string =>
  JSON.stringify({
    index: r.index,
    kind: r.kind,
    at: r.at,
    ref: r.ref,
    body: r.body,
    digest: r.digest,
    prevHash: r.prevHash,
    hash: r.hash
  }) + "\n"

const addRef = (refs: Map<string, number | Array<number>>, ref: string, position: number) => {
  if (ref === "") return
  const hit = refs.get(ref)
  if (hit === undefined) refs.set(ref, position)
  else if (typeof hit === "number") refs.set(ref, [hit, position])
  else hit.push(position)
}

interface Scan {
  readonly index: LineIndex
  readonly refs: Map<string, number | Array<number>>
  readonly last: StoredRecord | undefined
  readonly lastGoodHash: string
  /** Offset after the last newline: the end of the complete lines. */
  readonly end: number
  readonly size: number
}

const scanRecords = (fd: number): Scan => {
  const size = fs.fstatSync(fd).size
  const index = new LineIndex()
  const refs = new Map<string, number | Array<number>>()
  const chunk = Buffer.allocUnsafe(Math.min(SCAN_CHUNK, Math.max(size, 1)))
  let last: StoredRecord | undefined
  let lastGoodHash = EMPTY_HEAD.hash
  let carry = Buffer.alloc(0)
  let lineStart = 0
  let position = 0
  while (position < size) {
    const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - position), position)
    if (n === 0) break
    position += n
    const data = carry.length === 0 ? chunk.subarray(0, n) : Buffer.concat([carry, chunk.subarray(0, n)])
    let from = 0
    for (let nl = data.indexOf(10, from); nl !== -1; nl = data.indexOf(10, from)) {
      const at = index.count
      index.push(lineStart + from)
      last = decodeLine(data.toString("utf8", from, nl), at)
      if (!isCorrupt(last)) {
        addRef(refs, last.ref, at)
        lastGoodHash = last.hash
      }
      from = nl + 1
    }
    lineStart += from
    carry = Buffer.from(data.subarray(from))
  }
  return { index, refs, last, lastGoodHash, end: lineStart, size }
}

const readCheckpoints = (fd: number) => {
  const size = fs.fstatSync(fd).size
  const bytes = Buffer.alloc(size)
  let read = 0
  while (read < size) {
    const n = fs.readSync(fd, bytes, read, size - read, read)
    if (n === 0) break
    read += n
  }
  const end = bytes.lastIndexOf(10) + 1
  const checkpoints: Array<Checkpoint> = []
  let corruptLine: number | undefined
  const lines = end === 0 ? [] : bytes.toString("utf8", 0, end - 1).split("\n")
  lines.forEach((line, i) => {
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      value = undefined
    }
    if (isCheckpoint(value)) {
      const { size: s, headHash, at, keyId, signature } = value
      checkpoints.push({ size: s, headHash, at, keyId, signature })
    } else corruptLine ??= i + 1
  })
  return { checkpoints, corruptLine, end, size }
}

// ---------------------------------------------------------------------------------------------------------------------
// I/O

const io = <A>(journal: Journal, what: string, f: () => Promise<A>): Effect.Effect<A, LedgerUnavailable> =>
  Effect.tryPromise({ try: f, catch: (e) => unavailable(journal.file, what, e) })

const writeAt = (journal: Journal, bytes: Buffer, at: number): Effect.Effect<void, LedgerUnavailable> =>
  Effect.flatMap(
    io(journal, "write failed", () => journal.handle.write(bytes, 0, bytes.length, at)),
    ({ bytesWritten }) =>
      bytesWritten < bytes.length ? writeAt(journal, bytes.subarray(bytesWritten), at + bytesWritten) : Effect.void
  )

/**
 * Appends `bytes` at the durable end and syncs, then runs `onDurable(offset)` in the same step that moves the end (so
 * readers never see the new end without the index that describes it); on failure cuts the file back. Callers
 * serialize calls and run them {@link detached}.
 */
const appendDurably = <A>(
  journal: Journal,
  bytes: Buffer,
  onDurable: (at: number) => A
): Effect.Effect<A, LedgerUnavailable> =>
  Effect.suspend(() => {
    if (journal.failed !== undefined) return Effect.fail(journal.failed)
    const at = journal.end
    return writeAt(journal, bytes, at).pipe(
      Effect.andThen(io(journal, "fdatasync failed", () => journal.handle.datasync())),
      Effect.map(() => {
        journal.end = at + bytes.length
        return onDurable(at)
      }),
      Effect.catch((error) =>
        io(journal, "truncate failed", () => journal.handle.truncate(at)).pipe(
          Effect.andThen(io(journal, "fdatasync failed", () => journal.handle.datasync())),
          Effect.matchEffect({
            onSuccess: () => Effect.fail(error),
            onFailure: (undo) => {
              journal.failed = unavailable(
                journal.file,
                `${error.detail}, and the partial write could not be removed (${undo.detail}); refusing appends until reopened`
              )
              return Effect.fail(journal.failed)
            }
          })
        )
      )
    )
  })

/**
 * Runs a write uninterruptibly on a fiber of its own. A caller that stops waiting (the service's append timeout) is
 * answered at once, while the write still completes or rolls back under its permit: an interrupted write would leave
 * bytes past `end` that the next write only partly covers.
 */
const detached = <A>(write: Effect.Effect<A, LedgerUnavailable>): Effect.Effect<A, LedgerUnavailable> =>
  Effect.flatMap(Effect.forkDetach(write, { uninterruptible: true }), Fiber.join)

const readExactly = (journal: Journal, length: number, at: number): Effect.Effect<Buffer, LedgerUnavailable> => {
  const buffer = Buffer.allocUnsafe(length)
  const step = (done: number): Effect.Effect<Buffer, LedgerUnavailable> =>
    done === length
      ? Effect.succeed(buffer)
      : Effect.flatMap(
          io(journal, "read failed", () => journal.handle.read(buffer, done, length - done, at + done)),
          ({ bytesRead }) =>
            bytesRead === 0
              ? Effect.fail(unavailable(journal.file, "the file is shorter than its index"))
              : step(done + bytesRead)
        )
  return step(0)
}

// ---------------------------------------------------------------------------------------------------------------------
// Storage

const storage = (file: string, parts: Parts, scope: Scope.Closeable, readOnly: boolean): FileStorage => {
  const { records, checkpoints, index, refs } = parts
  const stored = parts.stored
  let head = parts.head
  let commits = 0
  let closed = false
  const recordWriter = Semaphore.makeUnsafe(1)
  const checkpointWriter = Semaphore.makeUnsafe(1)
  const closedError = unavailable(file, "the ledger is closed")
  const readOnlyError = unavailable(file, "opened read-only; appends are refused")

  /** Positions [from, to) as stored; the offsets and end are read once, so a concurrent append cannot tear the page. */
  const readPositions = (from: number, to: number): Effect.Effect<ReadonlyArray<StoredRecord>, LedgerUnavailable> =>
    Effect.suspend(() => {
      if (closed) return Effect.fail(closedError)
      const count = index.count
      const end = records.end
      to = Math.min(to, count)
      if (from < 0 || from >= to) return Effect.succeed([])
      const offset = (i: number) => (i < count ? index.at(i) : end)
      const start = offset(from)
      // Largest `to` whose bytes fit the read budget; always at least one record.
      let lo = from + 1
      let hi = to
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2)
        if (offset(mid) - start <= MAX_READ_BYTES) lo = mid
        else hi = mid - 1
      }
      const stop = lo
      return Effect.map(readExactly(records, offset(stop) - start, start), (bytes) => {
        const out: Array<StoredRecord> = new Array(stop - from)
        for (let i = from; i < stop; i++) {
          out[i - from] = decodeLine(bytes.toString("utf8", offset(i) - start, offset(i + 1) - start - 1), i)
        }
        return out
      })
    })

  const append = (drafts: ReadonlyArray<RecordDraft>): Effect.Effect<ReadonlyArray<LedgerRecord>, LedgerUnavailable> =>
    detached(
      recordWriter.withPermit(
        Effect.suspend(() => {
          if (closed) return Effect.fail(closedError)
          if (readOnly) return Effect.fail(readOnlyError)
          if (drafts.length === 0) return Effect.succeed([])
          const placed = link(head, drafts)
          const lines = placed.map((r) => Buffer.from(encodeRecord(r), "utf8"))
          return appendDurably(records, Buffer.concat(lines), (at) => {
            let offset = at
            for (let i = 0; i < placed.length; i++) {
              index.push(offset)
              offset += lines[i]!.length
              addRef(refs, placed[i]!.ref, placed[i]!.index)
            }
            const last = placed[placed.length - 1]!
            head = { size: last.index + 1, hash: last.hash }
            commits++
            return placed
          })
        })
      )
    )

  const appendCheckpoint = (cp: Checkpoint) =>
    detached(
      checkpointWriter.withPermit(
        Effect.suspend(() => {
          if (closed) return Effect.fail(closedError)
          if (readOnly || checkpoints === undefined) return Effect.fail(readOnlyError)
          // Nothing is signed over a chain this storage cannot vouch for.
          const refused = parts.checkpointError ?? records.failed
          if (refused !== undefined) return Effect.fail(refused)
          const { size, headHash, at, keyId, signature } = cp
          const line = JSON.stringify({ size, headHash, at, keyId, signature }) + "\n"
          return appendDurably(checkpoints, Buffer.from(line, "utf8"), () => {
            stored.push({ size, headHash, at, keyId, signature })
          })
        })
      )
    )

  return {
    description: `file:${file}`,
    writeMode: "batched",
    path: file,
    recoveredBytes: parts.recoveredBytes,
    readOnly,
    get commits() {
      return commits
    },
    head: Effect.sync(() => head),
    append,
    read: (from, limit) => readPositions(from, from + Math.max(0, limit)),
    findRef: (ref) =>
      Effect.suspend(() => {
        const hit = refs.get(ref)
        const positions = hit === undefined ? [] : typeof hit === "number" ? [hit] : hit.slice()
        return Effect.map(
          Effect.forEach(positions, (p) => readPositions(p, p + 1)),
          (pages) => pages.flat().filter((r): r is LedgerRecord => !isCorrupt(r) && r.ref === ref)
        )
      }),
    appendCheckpoint,
    checkpoints: Effect.suspend(() =>
      parts.checkpointError !== undefined ? Effect.fail(parts.checkpointError) : Effect.succeed(stored.slice())
    ),
    close: recordWriter.withPermit(
      checkpointWriter.withPermit(
        Effect.suspend(() => {
          closed = true
          return Scope.close(scope, Exit.void)
        })
      )
    )
  }
}
