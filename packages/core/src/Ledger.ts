/**
 * The tamper-evident ledger (SPEC §9): append-only, hash-chained, with signed checkpoints.
 *
 * Every record carries the hash of its predecessor; a record's hash covers its index, kind, time, reference, payload
 * digest and previous hash, and its payload digest is the SHA-256 of the canonical payload text it stores, so verifying
 * hashes stored bytes and never re-canonicalizes. Every `checkpointEvery` records or `checkpointIntervalMs`
 * milliseconds the ledger signs a checkpoint (size + head hash, as Certificate Transparency signs tree heads);
 * {@link Ledger.verify} checks the chain, every stored checkpoint and an optional externally retained one, which also
 * catches truncation of the tail, and reports the first bad index.
 *
 * Backends implement {@link LedgerStorage}; memory lives here, the JSONL file in {@link FileLedger}, SQLite and
 * PostgreSQL in their own packages. The service batches concurrent appends into one durable write (group commit) and
 * fails closed: an append that cannot be made durable is a {@link LedgerUnavailable}, and no caller proceeds.
 * @module
 */
import { createPublicKey, type KeyObject } from "node:crypto"
import { Context, Duration, Effect, Exit, Layer, Schedule, Schema, Scope } from "effect"
import * as Envelope from "./Envelope.ts"
import { sha256Hex } from "./internal/hash.ts"
import { Sealer, verifySignature } from "./Sealer.ts"

/** The hash a first record links to. */
export const GENESIS_HASH = "0".repeat(64)

/** Kinds of ledger records. */
export const RecordKind = Schema.Literals(["decision", "execution", "escalation", "incident", "policy"])
/** @see RecordKind */
export type RecordKind = typeof RecordKind.Type

/** The ledger could not accept or read a record. Nothing may execute on its account. */
export class LedgerUnavailable extends Schema.TaggedError<LedgerUnavailable>()("LedgerUnavailable", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** A record to append, before the ledger places it in the chain. */
export interface RecordDraft {
  readonly kind: RecordKind
  /** ISO-8601 time of the event. */
  readonly at: string
  /** What the record is about (an envelope id, a policy snapshot id), or "". */
  readonly ref: string
  /** Canonical JSON text of the payload. */
  readonly body: string
  /** SHA-256 of `body`. */
  readonly digest: string
}

/** A record placed in the chain. */
export interface LedgerRecord extends RecordDraft {
  readonly index: number
  readonly prevHash: string
  readonly hash: string
}

/** Schema of a stored record, for backends that read rows or lines back. */
export const LedgerRecordSchema = Schema.Struct({
  index: Schema.Int,
  kind: RecordKind,
  at: Schema.String,
  ref: Schema.String,
  body: Schema.String,
  digest: Schema.String,
  prevHash: Schema.String,
  hash: Schema.String
})

/** A position a backend could not decode as a record (e.g. a garbled line). */
export interface CorruptRecord {
  readonly _corrupt: true
  /** The index the record should have had. */
  readonly index: number
  readonly detail: string
}

/** What a backend returns when reading: a record, or what stands where one should be. */
export type StoredRecord = LedgerRecord | CorruptRecord

/** True when a stored position could not be decoded. */
export const isCorrupt = (r: StoredRecord): r is CorruptRecord => "_corrupt" in r

/** Size and head hash of a chain. */
export interface Head {
  readonly size: number
  readonly hash: string
}

/** An empty chain. */
export const EMPTY_HEAD: Head = { size: 0, hash: GENESIS_HASH }

/** A signed tree head. */
export const Checkpoint = Schema.Struct({
  size: Schema.Int,
  headHash: Schema.String,
  at: Schema.String,
  keyId: Schema.String,
  signature: Schema.String
})
/** @see Checkpoint */
export type Checkpoint = typeof Checkpoint.Type

/** Hash of a record: covers every field but the body, which its digest covers. */
export const recordHash = (
  index: number,
  kind: string,
  at: string,
  ref: string,
  digest: string,
  prevHash: string
): string => sha256Hex(`egl-record/v1\n${index}\n${kind}\n${at}\n${ref}\n${digest}\n${prevHash}`)

/** Places drafts after `head`: the single definition of the chain that every backend uses. */
export const link = (head: Head, drafts: ReadonlyArray<RecordDraft>): Array<LedgerRecord> => {
  const out: Array<LedgerRecord> = new Array(drafts.length)
  let prevHash = head.hash
  let index = head.size
  for (let i = 0; i < drafts.length; i++) {
    const d = drafts[i]!
    const hash = recordHash(index, d.kind, d.at, d.ref, d.digest, prevHash)
    out[i] = { index, kind: d.kind, at: d.at, ref: d.ref, body: d.body, digest: d.digest, prevHash, hash }
    prevHash = hash
    index++
  }
  return out
}

/** A draft from a JSON payload: canonicalizes and digests it once. */
export const draft = (kind: RecordKind, at: string, ref: string, body: string): RecordDraft => ({
  kind,
  at,
  ref,
  body,
  digest: sha256Hex(body)
})

/** The message a checkpoint signature covers. */
export const checkpointMessage = (size: number, headHash: string, at: string): string =>
  `egl-checkpoint/v1\n${size}\n${headHash}\n${at}`

/**
 * A storage backend. Implementations are single-writer or serialize writers themselves (a lock, a locked head row) and
 * must compute the chain with {@link link} from the head they hold under that lock.
 */
export interface LedgerStorage {
  /** Human-readable location, e.g. `sqlite:/var/lib/egl/ledger.db`. */
  readonly description: string
  /**
   * `immediate`: an append completes without I/O (memory); the service writes inline.
   * `batched`: appends are durable I/O; the service groups concurrent appends into one write (group commit).
   */
  readonly writeMode: "immediate" | "batched"
  /** Current size and head hash. */
  readonly head: Effect.Effect<Head, LedgerUnavailable>
  /** Appends atomically and durably (all or none), returning the placed records. */
  append(drafts: ReadonlyArray<RecordDraft>): Effect.Effect<ReadonlyArray<LedgerRecord>, LedgerUnavailable>
  /** Up to `limit` stored positions from index `from`, in order, as stored (not validated). */
  read(from: number, limit: number): Effect.Effect<ReadonlyArray<StoredRecord>, LedgerUnavailable>
  /**
   * Optional streaming read for verification: calls `visit` with every stored position from `from`, in order, until it
   * returns false or the records end. Backends that can stream (a cursor) avoid building pages of records.
   */
  scan?(from: number, visit: (record: StoredRecord) => boolean): Effect.Effect<void, LedgerUnavailable>
  /** Records whose `ref` is `ref`, in chain order. */
  findRef(ref: string): Effect.Effect<ReadonlyArray<LedgerRecord>, LedgerUnavailable>
  /** Stores a signed checkpoint. */
  appendCheckpoint(checkpoint: Checkpoint): Effect.Effect<void, LedgerUnavailable>
  /** Every stored checkpoint, oldest first. */
  readonly checkpoints: Effect.Effect<ReadonlyArray<Checkpoint>, LedgerUnavailable>
  /** Releases files and connections. */
  readonly close: Effect.Effect<void>
}

/** Why verification stopped. */
export const VerifyFailure = Schema.Literals([
  "corrupt-record",
  "index-mismatch",
  "broken-link",
  "digest-mismatch",
  "hash-mismatch",
  "truncated",
  "checkpoint-mismatch",
  "checkpoint-signature"
])
/** @see VerifyFailure */
export type VerifyFailure = typeof VerifyFailure.Type

/** Result of {@link Ledger.verify}. */
export interface VerifyReport {
  readonly ok: boolean
  /** Number of records present. */
  readonly length: number
  /** First index that is missing or does not verify. */
  readonly firstBadIndex?: number
  readonly failure?: VerifyFailure
  readonly detail?: string
  /** Checkpoints checked (stored and trusted). */
  readonly checkpointsVerified: number
  /** Head hash of the verified prefix. */
  readonly headHash: string
}

/** Options of {@link Ledger.verify}. */
export interface VerifyOptions {
  /** A checkpoint retained outside the storage (catches truncation together with its checkpoints). */
  readonly trustedCheckpoint?: Checkpoint | undefined
  /** Public keys (PEM) that may have signed checkpoints; defaults to the ledger's own sealer key. */
  readonly publicKeys?: ReadonlyArray<string> | undefined
  /** Page size for streaming reads (default 10 000). */
  readonly pageSize?: number | undefined
}

/** Options of {@link verifyStorage}. */
export interface VerifyStorageOptions extends Omit<VerifyOptions, "publicKeys"> {
  /**
   * `verify` (default): every checkpoint must be signed by one of the public keys. `skip`: checkpoints are still
   * checked for size and head hash (so a cut tail or a rewritten chain is still found), but not for their signature;
   * for an auditor who holds no public key, and who must then say the signatures were not checked.
   */
  readonly signatures?: "verify" | "skip" | undefined
}

/** Verifies any storage with only public keys (what `egl ledger verify` runs). */
export const verifyStorage = (
  storage: LedgerStorage,
  publicKeyPems: ReadonlyArray<string>,
  options?: VerifyStorageOptions
): Effect.Effect<VerifyReport, LedgerUnavailable> =>
  Effect.gen(function* () {
    const keys = new Map<string, KeyObject>()
    for (const pem of publicKeyPems) {
      const key = yield* Effect.try({
        try: () => createPublicKey(pem),
        catch: () => new LedgerUnavailable({ detail: "a verification public key is not a valid PEM key" })
      })
      keys.set(keyIdOfKey(key), key)
    }
    const stored = yield* storage.checkpoints
    const checkpoints = options?.trustedCheckpoint ? [...stored, options.trustedCheckpoint] : [...stored]
    checkpoints.sort((a, b) => a.size - b.size)
    const wanted = new Set(checkpoints.map((c) => c.size))
    const hashesAt = new Map<number, string>()
    const pageSize = options?.pageSize ?? 10_000
    const { size } = yield* storage.head

    let prev = GENESIS_HASH
    let expected = 0
    let bad: { index: number; failure: VerifyFailure; detail: string } | undefined
    // One record of the chain: false (and `bad` set) at the first that does not verify.
    const check = (r: StoredRecord): boolean => {
      if (isCorrupt(r)) {
        bad = { index: expected, failure: "corrupt-record", detail: r.detail }
        return false
      }
      if (r.index !== expected) {
        bad = { index: expected, failure: "index-mismatch", detail: `expected index ${expected}, found ${r.index}` }
        return false
      }
      if (r.prevHash !== prev) {
        bad = { index: expected, failure: "broken-link", detail: "previous hash does not match the preceding record" }
        return false
      }
      if (sha256Hex(r.body) !== r.digest) {
        bad = { index: expected, failure: "digest-mismatch", detail: "payload does not match its digest" }
        return false
      }
      if (recordHash(r.index, r.kind, r.at, r.ref, r.digest, r.prevHash) !== r.hash) {
        bad = { index: expected, failure: "hash-mismatch", detail: "record hash does not match its fields" }
        return false
      }
      prev = r.hash
      expected++
      if (wanted.has(expected)) hashesAt.set(expected, prev)
      return true
    }
    if (storage.scan !== undefined) {
      yield* storage.scan(0, check)
    } else {
      pages: while (bad === undefined) {
        const page = yield* storage.read(expected, pageSize)
        if (page.length === 0) break
        for (const r of page) if (!check(r)) break pages
      }
    }
    const length = Math.max(size, expected)
    if (bad !== undefined) {
      return {
        ok: false,
        length,
        firstBadIndex: bad.index,
        failure: bad.failure,
        detail: bad.detail,
        checkpointsVerified: 0,
        headHash: prev
      }
    }
    let verified = 0
    let lastGood = 0
    const checkSignatures = options?.signatures !== "skip"
    for (const cp of checkpoints) {
      const key = keys.get(cp.keyId)
      if (
        checkSignatures &&
        (key === undefined || !verifySignature(key, checkpointMessage(cp.size, cp.headHash, cp.at), cp.signature))
      ) {
        return {
          ok: false,
          length,
          firstBadIndex: Math.min(lastGood, expected),
          failure: "checkpoint-signature",
          detail: `checkpoint at size ${cp.size} is not signed by a trusted key`,
          checkpointsVerified: verified,
          headHash: prev
        }
      }
      if (cp.size > expected) {
        return {
          ok: false,
          length,
          firstBadIndex: expected,
          failure: "truncated",
          detail: `a checkpoint covers ${cp.size} records but only ${expected} are present`,
          checkpointsVerified: verified,
          headHash: prev
        }
      }
      if (cp.size > 0 && hashesAt.get(cp.size) !== cp.headHash) {
        return {
          ok: false,
          length,
          firstBadIndex: lastGood,
          failure: "checkpoint-mismatch",
          detail: `the chain at size ${cp.size} does not match its signed checkpoint`,
          checkpointsVerified: verified,
          headHash: prev
        }
      }
      lastGood = cp.size
      verified++
    }
    return { ok: true, length, checkpointsVerified: verified, headHash: prev }
  })

const keyIdOfKey = (key: KeyObject): string => sha256Hex(key.export({ type: "spki", format: "der" })).slice(0, 16)

/** A sealed envelope read back from the ledger with the position of its decision record. */
export interface StoredEnvelope {
  readonly envelope: Envelope.ExecutionEnvelope
  readonly index: number
  readonly hash: string
}

/** Service options. */
export interface LedgerOptions {
  /** Sign a checkpoint after this many records (default 1000). */
  readonly checkpointEvery?: number | undefined
  /** Sign a checkpoint this often when records arrived since the last one (default 5000 ms). */
  readonly checkpointIntervalMs?: number | undefined
  /**
   * An append not durable within this time fails with {@link LedgerUnavailable} (default 5000 ms). The write itself
   * may still land later (the caller was refused, so nothing executed on it); the next successful append brings the
   * service's head up to date. A synchronous backend (SQLite through better-sqlite3) blocks the event loop while it
   * writes, so the timer cannot preempt it: its busy timeout bounds the wait instead.
   */
  readonly appendTimeoutMs?: number | undefined
  /** Most records written in one group commit (default 4096). */
  readonly maxBatch?: number | undefined
  /**
   * Public keys (PEM) of earlier signing keys whose checkpoints `verify` still trusts (key rotation). The current
   * sealer's key is always trusted.
   */
  readonly trustedPublicKeys?: ReadonlyArray<string> | undefined
}

/** The ledger service. */
export class Ledger extends Context.Service<
  Ledger,
  {
    /** Where the records live. */
    readonly description: string
    /** Appends one record; resolves once it is durable. */
    append(draft: RecordDraft): Effect.Effect<LedgerRecord, LedgerUnavailable>
    /** Appends records atomically, in order. */
    appendAll(drafts: ReadonlyArray<RecordDraft>): Effect.Effect<ReadonlyArray<LedgerRecord>, LedgerUnavailable>
    /** Current size and head hash. */
    readonly head: Effect.Effect<Head, LedgerUnavailable>
    /** Stored positions from `from`. */
    read(from: number, limit: number): Effect.Effect<ReadonlyArray<StoredRecord>, LedgerUnavailable>
    /** Records about `ref` (an envelope id), in chain order. */
    history(ref: string): Effect.Effect<ReadonlyArray<LedgerRecord>, LedgerUnavailable>
    /** The sealed envelope with this id, as stored, or undefined. */
    findEnvelope(id: string): Effect.Effect<StoredEnvelope | undefined, LedgerUnavailable>
    /** Signs and stores a checkpoint of the current head now. */
    readonly checkpoint: Effect.Effect<Checkpoint, LedgerUnavailable>
    /** Verifies the chain and its checkpoints. */
    verify(options?: VerifyOptions): Effect.Effect<VerifyReport, LedgerUnavailable>
  }
>()("@egl/core/Ledger") {
  /** A ledger over a storage acquired in the layer's scope (closed, after a final checkpoint, on release). */
  static readonly layerStorage = <E, R>(
    acquire: Effect.Effect<LedgerStorage, E, R>,
    options?: LedgerOptions
  ): Layer.Layer<Ledger, E | LedgerUnavailable, Exclude<R, Scope.Scope> | Sealer> =>
    Layer.effect(
      Ledger,
      Effect.gen(function* () {
        const storage = yield* Effect.acquireRelease(acquire, (s) => s.close)
        return yield* make(storage, options)
      })
    )
  /** An in-memory ledger (tests, benchmarks, ephemeral demos). */
  static readonly layerMemory = (options?: LedgerOptions) =>
    Ledger.layerStorage(Effect.sync(makeMemoryStorage), options)
}

/** Builds the ledger service over a storage; requires a {@link Sealer} for checkpoints and a scope for its timer. */
export const make = (
  storage: LedgerStorage,
  options?: LedgerOptions
): Effect.Effect<Ledger["Service"], LedgerUnavailable, Sealer | Scope.Scope> =>
  Effect.gen(function* () {
    const sealer = yield* Sealer
    const checkpointEvery = options?.checkpointEvery ?? 1000
    const intervalMs = options?.checkpointIntervalMs ?? 5000
    const timeout = Duration.millis(options?.appendTimeoutMs ?? 5000)
    const maxBatch = options?.maxBatch ?? 4096

    const initial = yield* storage.head
    const stored = yield* storage.checkpoints
    let head: Head = initial
    // Volume- and timer-triggered checkpoints may be stored out of order: the largest is what counts.
    let checkpointedSize = stored.reduce((max, c) => Math.max(max, c.size), 0)
    let checkpointing: Promise<unknown> | undefined

    const timed = <A>(effect: Effect.Effect<A, LedgerUnavailable>) =>
      Effect.timeoutOrElse(effect, {
        duration: timeout,
        orElse: () => Effect.fail(new LedgerUnavailable({ detail: `${storage.description}: append timed out` }))
      })

    const signCheckpoint = (at: Head): Effect.Effect<Checkpoint, LedgerUnavailable> =>
      Effect.gen(function* () {
        const when = new Date().toISOString()
        const signature = yield* sealer
          .sign(checkpointMessage(at.size, at.hash, when))
          .pipe(Effect.mapError((e) => new LedgerUnavailable({ detail: `checkpoint signing failed: ${e.detail}` })))
        const cp: Checkpoint = { size: at.size, headHash: at.hash, at: when, keyId: sealer.keyId, signature }
        yield* storage.appendCheckpoint(cp)
        if (cp.size > checkpointedSize) checkpointedSize = cp.size
        return cp
      })

    // Checkpoints triggered by volume run beside the appends; one at a time.
    const maybeCheckpoint = () => {
      if (head.size - checkpointedSize >= checkpointEvery && checkpointing === undefined) {
        const at = head
        checkpointing = Effect.runPromise(Effect.exit(signCheckpoint(at))).finally(() => {
          checkpointing = undefined
        })
      }
    }

    const placed = (records: ReadonlyArray<LedgerRecord>) => {
      const last = records[records.length - 1]
      if (last !== undefined && last.index + 1 > head.size) head = { size: last.index + 1, hash: last.hash }
      maybeCheckpoint()
    }

    // Group commit: while one write is in flight, later appends queue up and go out together in the next write.
    interface Pending {
      readonly drafts: ReadonlyArray<RecordDraft>
      readonly resume: (effect: Effect.Effect<ReadonlyArray<LedgerRecord>, LedgerUnavailable>) => void
    }
    let queue: Array<Pending> = []
    let writing = false
    let scheduled = false

    const flush = () => {
      scheduled = false
      if (writing || queue.length === 0) return
      writing = true
      let taken = 0
      let count = 0
      while (taken < queue.length && (count === 0 || count + queue[taken]!.drafts.length <= maxBatch)) {
        count += queue[taken]!.drafts.length
        taken++
      }
      const batch = taken === queue.length ? queue : queue.slice(0, taken)
      queue = taken === queue.length ? [] : queue.slice(taken)
      const drafts = batch.length === 1 ? batch[0]!.drafts : batch.flatMap((p) => p.drafts)
      void Effect.runPromise(Effect.exit(timed(storage.append(drafts)))).then((exit) => {
        writing = false
        if (Exit.isSuccess(exit)) {
          placed(exit.value)
          let offset = 0
          for (const p of batch) {
            const mine = exit.value.slice(offset, offset + p.drafts.length)
            offset += p.drafts.length
            p.resume(Effect.succeed(mine))
          }
        } else {
          const error = Exit.isFailure(exit) ? failureOf(exit, storage.description) : undefined
          for (const p of batch) p.resume(Effect.fail(error!))
        }
        schedule()
      })
    }

    const schedule = () => {
      if (!scheduled && !writing && queue.length > 0) {
        scheduled = true
        setImmediate(flush)
      }
    }

    const appendAll = (
      drafts: ReadonlyArray<RecordDraft>
    ): Effect.Effect<ReadonlyArray<LedgerRecord>, LedgerUnavailable> => {
      if (drafts.length === 0) return Effect.succeed([])
      if (storage.writeMode === "immediate" && !writing && queue.length === 0) {
        return Effect.map(storage.append(drafts), (records) => {
          placed(records)
          return records
        })
      }
      return Effect.callback<ReadonlyArray<LedgerRecord>, LedgerUnavailable>((resume) => {
        queue.push({ drafts, resume })
        schedule()
      })
    }

    const append = (d: RecordDraft) => Effect.map(appendAll([d]), (records) => records[0]!)

    if (intervalMs > 0) {
      yield* Effect.forkScoped(
        Effect.suspend(() => (head.size > checkpointedSize ? Effect.ignore(signCheckpoint(head)) : Effect.void)).pipe(
          Effect.repeat(Schedule.spaced(Duration.millis(intervalMs)))
        )
      )
    }
    // A final checkpoint on shutdown, so a clean stop leaves the whole chain under a signature.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        while (writing || queue.length > 0) yield* Effect.sleep(Duration.millis(1))
        if (checkpointing !== undefined) yield* Effect.promise(() => checkpointing!)
        if (head.size > checkpointedSize) yield* Effect.ignore(signCheckpoint(head))
      })
    )

    const trusted = [sealer.publicKeyPem, ...(options?.trustedPublicKeys ?? [])]
    const verify = (options?: VerifyOptions) => verifyStorage(storage, options?.publicKeys ?? trusted, options)

    const findEnvelope = (id: string): Effect.Effect<StoredEnvelope | undefined, LedgerUnavailable> =>
      Effect.flatMap(storage.findRef(id), (records) => {
        const r = records.find((x) => x.kind === "decision")
        if (r === undefined) return Effect.succeed(undefined)
        return Effect.try({
          try: () => JSON.parse(r.body) as Envelope.UnsealedEnvelope,
          catch: () => new LedgerUnavailable({ detail: `record ${r.index} does not hold a valid envelope` })
        }).pipe(
          Effect.map((unsealed) => ({
            envelope: Envelope.withSnapshotId(unsealed, r.digest),
            index: r.index,
            hash: r.hash
          }))
        )
      })

    return Ledger.of({
      description: storage.description,
      append,
      appendAll,
      // The storage's head, not this service's last append: other instances may share the storage.
      head: Effect.tap(storage.head, (h) =>
        Effect.sync(() => {
          if (h.size > head.size) head = h
        })
      ),
      read: (from, limit) => storage.read(from, limit),
      history: (ref) => storage.findRef(ref),
      findEnvelope,
      checkpoint: Effect.suspend(() => signCheckpoint(head)),
      verify
    })
  })

const failureOf = (exit: Exit.Exit<unknown, LedgerUnavailable>, description: string): LedgerUnavailable => {
  if (Exit.isFailure(exit)) {
    const err = exit.cause.reasons.find((r) => r._tag === "Fail")
    if (err !== undefined && err._tag === "Fail") return err.error as LedgerUnavailable
  }
  return new LedgerUnavailable({ detail: `${description}: append failed` })
}

/** An in-memory storage: immediate, not durable. */
export const makeMemoryStorage = (): LedgerStorage => {
  const records: Array<LedgerRecord> = []
  const byRef = new Map<string, Array<LedgerRecord>>()
  const checkpoints: Array<Checkpoint> = []
  let head: Head = EMPTY_HEAD
  return {
    description: "memory",
    writeMode: "immediate",
    head: Effect.sync(() => head),
    append: (drafts) =>
      Effect.sync(() => {
        const placed = link(head, drafts)
        for (const r of placed) {
          records.push(r)
          if (r.ref !== "") {
            const list = byRef.get(r.ref)
            if (list === undefined) byRef.set(r.ref, [r])
            else list.push(r)
          }
        }
        const last = placed[placed.length - 1]!
        head = { size: last.index + 1, hash: last.hash }
        return placed
      }),
    read: (from, limit) => Effect.sync(() => records.slice(from, from + limit)),
    scan: (from, visit) =>
      Effect.sync(() => {
        for (let i = from; i < records.length && visit(records[i]!); i++);
      }),
    findRef: (ref) => Effect.sync(() => byRef.get(ref) ?? []),
    appendCheckpoint: (cp) =>
      Effect.sync(() => {
        checkpoints.push(cp)
      }),
    checkpoints: Effect.sync(() => checkpoints.slice()),
    close: Effect.void
  }
}
