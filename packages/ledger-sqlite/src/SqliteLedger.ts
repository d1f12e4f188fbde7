/**
 * The SQLite ledger backend (the embedded default), on better-sqlite3.
 *
 * WAL mode with `synchronous = FULL`, so a committed transaction survives power loss. An append is one
 * `BEGIN IMMEDIATE` transaction for the whole batch the service hands it (its group commit), and the head is read
 * inside that transaction: with the write lock held, two processes sharing the file cannot both extend the same head
 * and fork the chain; the second waits (up to the busy timeout) and links after the first.
 *
 * Rows are read back as stored; {@link Ledger.verifyStorage} finds edited columns, deleted rows (an index gap) and a cut
 * tail (against the last signed checkpoint). Every SQLite error is a {@link Ledger.LedgerUnavailable}: fail closed.
 *
 * `make(path, { readOnly: true })` (what `egl ledger verify` uses) opens an existing ledger database for reading only:
 * it never creates the file nor migrates it, refuses a database without the ledger schema, refuses appends, and reads
 * beside a running writer (WAL readers see committed transactions only). SQLite may leave its `-wal` / `-shm` side files
 * behind after a read-only connection to a WAL database; the database itself is never written.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Sealer } from "@egl/core"
 * import { SqliteLedger } from "@egl/ledger-sqlite"
 *
 * const LedgerLive = SqliteLedger.layer("/var/lib/egl/ledger.db").pipe(Layer.provide(Sealer.Sealer.layerGenerated))
 * ```
 * @module
 */
import { existsSync } from "node:fs"
import { Ledger, type Sealer } from "@egl/core"
import Database from "better-sqlite3"
import { Effect, type Layer, type Scope } from "effect"

/** Version of the schema this module writes; a database from a newer version is refused rather than misread. */
export const SCHEMA_VERSION = 1

/** Storage options. */
export interface Options {
  /** How long an append waits for another connection's write transaction before failing (default 5000 ms). */
  readonly busyTimeoutMs?: number | undefined
  /**
   * Open an existing ledger database for reading and verification only: a missing file, or a database without the
   * ledger schema, is a {@link Ledger.LedgerUnavailable}; nothing is created or migrated, and appends fail.
   */
  readonly readOnly?: boolean | undefined
}

/** A SQLite ledger storage, with its commit count. */
export interface SqliteStorage extends Ledger.LedgerStorage {
  /** Path of the database file. */
  readonly path: string
  /** True when opened with `readOnly`: appends and checkpoints are refused. */
  readonly readOnly: boolean
  /** Append transactions committed since opening: fewer than appends when group commit works. */
  readonly commits: number
}

/**
 * Opens (creating and migrating if needed) the ledger database at `path`; the caller must run `close`.
 * Fails with {@link Ledger.LedgerUnavailable} when the file cannot be opened or was written by a newer schema.
 * With `readOnly`, opens an existing ledger without writing anything (see {@link Options.readOnly}).
 *
 * @example
 * ```ts
 * // Verify a ledger the app may be writing right now, with only the public key.
 * const report = yield* Effect.acquireUseRelease(
 *   SqliteLedger.make("ledger.db", { readOnly: true }),
 *   (storage) => Ledger.verifyStorage(storage, [publicKeyPem]),
 *   (storage) => storage.close
 * )
 * ```
 */
export const make = (path: string, options?: Options): Effect.Effect<SqliteStorage, Ledger.LedgerUnavailable> =>
  Effect.try({ try: () => connect(path, options), catch: (e) => unavailable(path, e) })

/** {@link make} with `close` tied to the current scope. */
export const open = (
  path: string,
  options?: Options
): Effect.Effect<SqliteStorage, Ledger.LedgerUnavailable, Scope.Scope> =>
  Effect.acquireRelease(make(path, options), (s) => s.close)

/**
 * The {@link Ledger.Ledger} service over the database at `path` (requires a `Sealer` for checkpoints).
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const ledger = yield* Ledger.Ledger
 *   yield* ledger.append(Ledger.draft("decision", new Date().toISOString(), "env-1", '{"ok":true}'))
 * }).pipe(Effect.provide(SqliteLedger.layer("ledger.db").pipe(Layer.provide(Sealer.Sealer.layerGenerated))))
 * ```
 */
export const layer = (
  path: string,
  options?: Options & Ledger.LedgerOptions
): Layer.Layer<Ledger.Ledger, Ledger.LedgerUnavailable, Sealer.Sealer> =>
  Ledger.Ledger.layerStorage(make(path, options), options)

// ---------------------------------------------------------------------------------------------------------------------

const unavailable = (path: string, cause: unknown) =>
  new Ledger.LedgerUnavailable({ detail: `sqlite:${path}: ${cause instanceof Error ? cause.message : String(cause)}` })

/** Schema steps; step `i` takes a database from version `i` to `i + 1`. Append only: shipped steps never change. */
const migrations: ReadonlyArray<string> = [
  `CREATE TABLE records (
     idx INTEGER PRIMARY KEY,
     kind TEXT NOT NULL,
     at TEXT NOT NULL,
     ref TEXT NOT NULL,
     body TEXT NOT NULL,
     digest TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   ) STRICT;
   CREATE INDEX records_ref ON records (ref);
   CREATE TABLE checkpoints (
     seq INTEGER PRIMARY KEY,
     size INTEGER NOT NULL,
     head_hash TEXT NOT NULL,
     at TEXT NOT NULL,
     key_id TEXT NOT NULL,
     signature TEXT NOT NULL
   ) STRICT;`
]

const migrate = (db: Database.Database) => {
  db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT")
  const read = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")
  // IMMEDIATE: two processes opening a fresh file at once must not both run the same step.
  db.transaction(() => {
    const version = Number(read.get()?.value ?? 0)
    if (!Number.isInteger(version) || version > SCHEMA_VERSION) {
      throw new Error(`schema version ${read.get()?.value} is newer than this module supports (${SCHEMA_VERSION})`)
    }
    for (let step = version; step < migrations.length; step++) db.exec(migrations[step]!)
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION))
  }).immediate()
}

interface Row {
  readonly index: unknown
  readonly kind: unknown
  readonly at: unknown
  readonly ref: unknown
  readonly body: unknown
  readonly digest: unknown
  readonly prevHash: unknown
  readonly hash: unknown
}

const COLUMNS = 'idx AS "index", kind, at, ref, body, digest, prev_hash AS prevHash, hash'
const KINDS: ReadonlySet<unknown> = new Set(Ledger.RecordKind.literals)

/** A row as a record, or as a corrupt position when a column cannot be what a record holds (e.g. edited to a blob). */
const fromRow = (row: Row): Ledger.StoredRecord => {
  const { index, kind, at, ref, body, digest, prevHash, hash } = row
  if (
    typeof index !== "number" ||
    !KINDS.has(kind) ||
    typeof at !== "string" ||
    typeof ref !== "string" ||
    typeof body !== "string" ||
    typeof digest !== "string" ||
    typeof prevHash !== "string" ||
    typeof hash !== "string"
  ) {
    return { _corrupt: true, index: Number(index), detail: `row ${String(index)} does not hold a ledger record` }
  }
  return { index, kind: kind as Ledger.RecordKind, at, ref, body, digest, prevHash, hash }
}

/** Checks, without writing, that a database holds a ledger of a schema version this module reads. */
const checkSchema = (db: Database.Database) => {
  const tables = new Set(db.prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all())
  if (!["meta", "records", "checkpoints"].every((t) => tables.has(t))) {
    throw new Error("not a ledger database (no ledger schema)")
  }
  const value = db.prepare<[], string>("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()
  if (value !== String(SCHEMA_VERSION)) {
    throw new Error(`schema version ${value ?? "(none)"} is not the one this module reads (${SCHEMA_VERSION})`)
  }
}

const connect = (path: string, options?: Options): SqliteStorage => {
  const readOnly = options?.readOnly === true
  // SQLite's own message for a missing file ("unable to open database file") does not say which case this is.
  if (readOnly && !existsSync(path)) throw new Error("no ledger at this path (a read-only open creates nothing)")
  const db = new Database(path, {
    timeout: options?.busyTimeoutMs ?? 5000,
    ...(readOnly ? { readonly: true, fileMustExist: true } : {})
  })
  try {
    if (readOnly) {
      checkSchema(db)
    } else {
      db.pragma("journal_mode = WAL")
      db.pragma("synchronous = FULL")
      migrate(db)
    }
  } catch (e) {
    db.close()
    throw e
  }
  const description = `sqlite:${path}`
  const last = db.prepare<[], { idx: number; hash: string }>("SELECT idx, hash FROM records ORDER BY idx DESC LIMIT 1")
  const insert = db.prepare(
    "INSERT INTO records (idx, kind, at, ref, body, digest, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
  )
  const page = db.prepare<[number, number], Row>(`SELECT ${COLUMNS} FROM records WHERE idx >= ? ORDER BY idx LIMIT ?`)
  const byRef = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM records WHERE ref = ? ORDER BY idx`)
  // Verification streams raw rows through a cursor: no page of row objects to build and collect.
  const cursor = db
    .prepare<[number], ReadonlyArray<unknown>>(
      "SELECT idx, kind, at, ref, body, digest, prev_hash, hash FROM records WHERE idx >= ? ORDER BY idx"
    )
    .raw(true)
  const insertCheckpoint = db.prepare(
    "INSERT INTO checkpoints (size, head_hash, at, key_id, signature) VALUES (?, ?, ?, ?, ?)"
  )
  const allCheckpoints = db.prepare<[], Ledger.Checkpoint>(
    "SELECT size, head_hash AS headHash, at, key_id AS keyId, signature FROM checkpoints ORDER BY seq"
  )
  const headOf = (): Ledger.Head => {
    const row = last.get()
    return row === undefined ? Ledger.EMPTY_HEAD : { size: row.idx + 1, hash: row.hash }
  }
  const appendTx = db.transaction((drafts: ReadonlyArray<Ledger.RecordDraft>) => {
    const placed = Ledger.link(headOf(), drafts)
    for (const r of placed) insert.run(r.index, r.kind, r.at, r.ref, r.body, r.digest, r.prevHash, r.hash)
    return placed
  })
  let commits = 0

  const run = <A>(f: () => A): Effect.Effect<A, Ledger.LedgerUnavailable> =>
    Effect.try({ try: f, catch: (e) => unavailable(path, e) })
  const refused = Effect.fail(unavailable(path, "opened read-only; appends are refused"))

  return {
    description,
    writeMode: "batched",
    path,
    readOnly,
    get commits() {
      return commits
    },
    head: run(headOf),
    append: (drafts) =>
      readOnly
        ? refused
        : run(() => {
            if (drafts.length === 0) return []
            const placed = appendTx.immediate(drafts)
            commits++
            return placed
          }),
    read: (from, limit) => run(() => page.all(from, Math.max(0, limit)).map(fromRow)),
    scan: (from, visit) =>
      run(() => {
        const rows = cursor.iterate(from)
        try {
          for (const r of rows) {
            const [index, kind, at, ref, body, digest, prevHash, hash] = r
            const record: Ledger.StoredRecord =
              typeof index === "number" &&
              KINDS.has(kind) &&
              typeof at === "string" &&
              typeof ref === "string" &&
              typeof body === "string" &&
              typeof digest === "string" &&
              typeof prevHash === "string" &&
              typeof hash === "string"
                ? { index, kind: kind as Ledger.RecordKind, at, ref, body, digest, prevHash, hash }
                : { _corrupt: true, index: Number(index), detail: `row ${String(index)} does not hold a ledger record` }
            if (!visit(record)) break
          }
        } finally {
          // Ends the statement (and its read transaction) when the visitor stops early.
          rows.return?.()
        }
      }),
    findRef: (ref) =>
      run(() =>
        byRef.all(ref).flatMap((row) => {
          const r = fromRow(row)
          return Ledger.isCorrupt(r) ? [] : [r]
        })
      ),
    appendCheckpoint: (cp) =>
      readOnly
        ? refused
        : run(() => {
            insertCheckpoint.run(cp.size, cp.headHash, cp.at, cp.keyId, cp.signature)
          }),
    checkpoints: run(() => allCheckpoints.all()),
    close: Effect.sync(() => {
      if (db.open) db.close()
    })
  }
}
