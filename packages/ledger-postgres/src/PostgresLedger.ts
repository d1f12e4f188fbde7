/**
 * The PostgreSQL ledger backend: several app instances append to one consistent chain (SPEC §9), on node-postgres.
 *
 * An append is one transaction for the whole batch the `Ledger` service hands it (its group commit): lock the single
 * `head` row (`SELECT … FOR UPDATE`), place the batch after it with `Ledger.link`, insert every record in one statement,
 * move the head, commit. The row lock serializes writers across instances, so indices are gapless (they are placed by
 * `link`, never by a sequence, which leaves gaps on rollback) and no two records link to the same predecessor
 * (`prev_hash` is also `UNIQUE`, a second line of defence).
 *
 * Every record carries an idempotency key, generated once per append call. When the connection is lost or terminated
 * during an append (before or after COMMIT reached the server), the outcome is unknown; the append retries on a new
 * connection, and the retry, holding the head lock, first looks its keys up: all present, the commit happened and those
 * records are the answer; none, it writes the batch again. A batch is one transaction, so a part of it cannot exist; if
 * one did, the append fails rather than guess. Retries are bounded (`maxAttempts`); every other failure, and every pg
 * error, is a {@link Ledger.LedgerUnavailable}: fail closed.
 *
 * The tables live in one schema (`options.schema`, the URL's `?schema=` parameter, or `public`): `meta`
 * (`schema_version`), `migrations`, `head`, `records`, `checkpoints` and `grants` (for {@link PostgresGrantStore}).
 * Opening migrates them: numbered steps, each in a transaction under an advisory lock of the schema, so concurrent
 * starts run each step once; a schema of a newer version is refused.
 *
 * `make(url, { readOnly: true })` (what `egl ledger verify` uses) reads an existing ledger only: no schema is created
 * or migrated, a schema without a ledger is refused, appends are refused, and its sessions are read-only on the server.
 * Verification streams the chain through a cursor in one repeatable-read snapshot, in which it also holds the `head`
 * row to the records: rows beyond it, or fewer rows than it counts, are reported at their index.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Sealer } from "@egl/core"
 * import { PostgresLedger } from "@egl/ledger-postgres"
 *
 * const LedgerLive = PostgresLedger.layer("postgres://egl@db:5432/egl?schema=egl").pipe(
 *   Layer.provide(Sealer.Sealer.layer({ privateKeyPem: process.env["EGL_SIGNING_KEY"] }))
 * )
 * ```
 * @module
 */
import { randomUUID } from "node:crypto"
import { Ledger, type Sealer } from "@egl/core"
import { Effect, type Layer, type Scope } from "effect"
import type { Pool, PoolClient, QueryResult } from "pg"
import { isConnectionLoss, makePool, messageOf, sleep, target, type Target, withClient } from "./internal/connection.ts"
import * as Schema from "./internal/schema.ts"

/** Version of the schema this module writes; a schema of a newer version is refused rather than misread. */
export const SCHEMA_VERSION: number = Schema.SCHEMA_VERSION

/** Storage options. */
export interface Options {
  /**
   * The schema holding the ledger's tables (default: the URL's `schema` query parameter, else `public`). Lower-case
   * letters, digits and `_`. One schema is one chain: every instance that shares it appends to the same chain.
   */
  readonly schema?: string | undefined
  /** Most connections the storage opens (default 4; appends use one at a time, reads the others). */
  readonly pool?: number | undefined
  /**
   * Server-side limit of each statement, including the wait for the head lock, and of connecting (default 5000 ms).
   * A session that stays idle inside a transaction that long (a writer that vanished) is ended by the server.
   */
  readonly statementTimeoutMs?: number | undefined
  /**
   * Open an existing ledger for reading and verification only: a schema without a ledger is a
   * {@link Ledger.LedgerUnavailable}; nothing is created or migrated, appends and checkpoints fail, and the server
   * refuses writes on its sessions.
   */
  readonly readOnly?: boolean | undefined
  /** `application_name` of the sessions, as `pg_stat_activity` shows them (default `egl-ledger`). */
  readonly applicationName?: string | undefined
  /** Attempts of one append when connections are lost (default 5); then the append fails. */
  readonly maxAttempts?: number | undefined
  /**
   * Fault injection for tests: called once COMMIT has been sent on an append's session, before its reply is read. It
   * can terminate the session (`pg_terminate_backend(pid)`) or cut the socket, so the append cannot learn the outcome.
   */
  readonly onCommitSent?: ((commit: CommitInFlight) => void | Promise<void>) | undefined
}

/** An append whose COMMIT is on its way to the server (see {@link Options.onCommitSent}). */
export interface CommitInFlight {
  /** Server process id of the session, for `pg_terminate_backend`. */
  readonly pid: number
  /** Attempt of the append, from 0. */
  readonly attempt: number
  /** Closes the session's socket at once, without reading the reply. */
  readonly cut: () => void
}

/** A PostgreSQL ledger storage, with its counters. */
export interface PostgresStorage extends Ledger.LedgerStorage {
  /** The schema of the ledger. */
  readonly schema: string
  /** True when opened with `readOnly`: appends and checkpoints are refused. */
  readonly readOnly: boolean
  /** Migration steps this open ran (empty when the schema was current, or read-only). */
  readonly migrated: ReadonlyArray<number>
  /** Append transactions this storage saw commit (not those whose reply was lost): fewer than appends when group commit works. */
  readonly commits: number
  /** Appends retried after a lost connection. */
  readonly retries: number
  /** Appends whose commit outcome was unknown and that were found committed by their idempotency keys. */
  readonly recovered: number
}

/**
 * Connects to the ledger at `url` (creating and migrating its schema if needed); the caller must run `close`. Fails
 * with {@link Ledger.LedgerUnavailable} when the URL or schema name is invalid, the database cannot be reached, or the
 * schema was written by a newer version. With `readOnly`, opens an existing ledger without writing anything.
 *
 * @example
 * ```ts
 * // Verify the ledger the app instances are writing, with only the public key.
 * const report = yield* Effect.acquireUseRelease(
 *   PostgresLedger.make("postgres://auditor@db/egl?schema=egl", { readOnly: true }),
 *   (storage) => Ledger.verifyStorage(storage, [publicKeyPem]),
 *   (storage) => storage.close
 * )
 * ```
 */
export const make = (url: string, options?: Options): Effect.Effect<PostgresStorage, Ledger.LedgerUnavailable> =>
  Effect.gen(function* () {
    const t = yield* Effect.try({
      try: () => target(url, options?.schema),
      catch: (e) => new Ledger.LedgerUnavailable({ detail: `postgres: ${messageOf(e)}` })
    })
    const readOnly = options?.readOnly === true
    const statementTimeoutMs = options?.statementTimeoutMs ?? 5000
    const pool = makePool(t, {
      max: options?.pool ?? 4,
      applicationName: options?.applicationName ?? "egl-ledger",
      statementTimeoutMs,
      readOnly
    })
    const migrated = yield* Effect.tryPromise({
      try: () => (readOnly ? Schema.check(pool, t).then(() => []) : Schema.migrate(pool, t)),
      catch: (e) => new Ledger.LedgerUnavailable({ detail: `${t.description}: ${messageOf(e)}` })
    }).pipe(Effect.tapError(() => Effect.promise(() => pool.end().catch(() => {}))))
    return storage(pool, t, { readOnly, migrated, maxAttempts: options?.maxAttempts ?? 5, hook: options?.onCommitSent })
  })

/** {@link make} with `close` tied to the current scope (e.g. `createGovernance({ ledger: { storage: open(url) } })`). */
export const open = (
  url: string,
  options?: Options
): Effect.Effect<PostgresStorage, Ledger.LedgerUnavailable, Scope.Scope> =>
  Effect.acquireRelease(make(url, options), (s) => s.close)

/**
 * The {@link Ledger.Ledger} service over the ledger at `url` (requires a `Sealer` for checkpoints).
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const ledger = yield* Ledger.Ledger
 *   yield* ledger.append(Ledger.draft("decision", new Date().toISOString(), "env-1", '{"ok":true}'))
 * }).pipe(Effect.provide(PostgresLedger.layer(url).pipe(Layer.provide(Sealer.Sealer.layerGenerated))))
 * ```
 */
export const layer = (
  url: string,
  options?: Options & Ledger.LedgerOptions
): Layer.Layer<Ledger.Ledger, Ledger.LedgerUnavailable, Sealer.Sealer> =>
  Ledger.Ledger.layerStorage(make(url, options), options)

// ---------------------------------------------------------------------------------------------------------------------

/** A failure an append must not retry: the server answered, or the table contradicts itself. */
class Definite extends Error {}

const COLUMNS = "idx, kind, at, ref, body, digest, prev_hash, hash"
const KINDS: ReadonlySet<unknown> = new Set(Ledger.RecordKind.literals)
/** Rows per FETCH of a verification scan. */
const SCAN_PAGE = 2000

/** A row (in {@link COLUMNS} order) as a record, or as a corrupt position when it cannot be one. */
const fromRow = (row: ReadonlyArray<unknown>): Ledger.StoredRecord => {
  const [idx, kind, at, ref, body, digest, prevHash, hash] = row
  const index = Number(idx)
  if (
    !Number.isSafeInteger(index) ||
    !KINDS.has(kind) ||
    typeof at !== "string" ||
    typeof ref !== "string" ||
    typeof body !== "string" ||
    typeof digest !== "string" ||
    typeof prevHash !== "string" ||
    typeof hash !== "string"
  ) {
    return { _corrupt: true, index, detail: `row ${String(idx)} does not hold a ledger record` }
  }
  return { index, kind: kind as Ledger.RecordKind, at, ref, body, digest, prevHash, hash }
}

const headOf = (result: QueryResult<{ size: string; hash: string }>): Ledger.Head => {
  const row = result.rows[0]
  if (row === undefined) throw new Definite("the head row is missing")
  return { size: Number(row.size), hash: row.hash }
}

const storage = (
  pool: Pool,
  t: Target,
  settings: {
    readonly readOnly: boolean
    readonly migrated: ReadonlyArray<number>
    readonly maxAttempts: number
    readonly hook: Options["onCommitSent"]
  }
): PostgresStorage => {
  const { readOnly, maxAttempts, hook } = settings
  const s = t.quoted
  let commits = 0
  let retries = 0
  let recovered = 0
  let closed = false

  const unavailable = (e: unknown) => new Ledger.LedgerUnavailable({ detail: `${t.description}: ${messageOf(e)}` })
  const run = <A>(f: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, Ledger.LedgerUnavailable> =>
    Effect.tryPromise({ try: f, catch: unavailable })
  const refused = Effect.fail(unavailable("opened read-only; appends and checkpoints are refused"))

  const lockHead = `BEGIN; SELECT size, hash FROM ${s}.head WHERE id FOR UPDATE`
  const findKeys = `SELECT ${COLUMNS}, idempotency_key::text FROM ${s}.records
    WHERE idempotency_key = ANY($1::uuid[]) ORDER BY idx`
  // One statement inserts the batch and moves the head; the head moves only from the size this batch was linked to.
  const insertBatch = `WITH placed AS (
      INSERT INTO ${s}.records (${COLUMNS}, idempotency_key)
      SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::uuid[])
      RETURNING 1
    )
    UPDATE ${s}.head SET size = $10, hash = $11
    WHERE id AND size = $12 AND (SELECT count(*) FROM placed) = $13`

  /**
   * The records an earlier attempt of this append committed, or undefined when it committed none. Runs under the head
   * lock: an earlier attempt still committing holds that lock, so its outcome is settled and visible here.
   */
  const committedEarlier = async (
    client: PoolClient,
    drafts: ReadonlyArray<Ledger.RecordDraft>,
    keys: ReadonlyArray<string>
  ): Promise<ReadonlyArray<Ledger.LedgerRecord> | undefined> => {
    const found = await client.query<Array<unknown>>({ text: findKeys, values: [keys], rowMode: "array" })
    if (found.rows.length === 0) return undefined
    const records = found.rows.map((row, i) => {
      const r = fromRow(row)
      const d = drafts[i]
      if (
        found.rows.length !== drafts.length ||
        Ledger.isCorrupt(r) ||
        row[8] !== keys[i] ||
        d === undefined ||
        r.kind !== d.kind ||
        r.ref !== d.ref ||
        r.digest !== d.digest
      ) {
        throw new Definite(
          `an append found ${found.rows.length} of its ${drafts.length} records already stored, not as one batch: ` +
            "a batch is one transaction, so this ledger was altered"
        )
      }
      return r
    })
    return records
  }

  /** One transaction: lock the head, link the batch after it, insert, move the head, commit. */
  const attempt = (
    drafts: ReadonlyArray<Ledger.RecordDraft>,
    keys: ReadonlyArray<string>,
    n: number,
    signal: AbortSignal
  ): Promise<ReadonlyArray<Ledger.LedgerRecord>> =>
    withClient(
      pool,
      async (client) => {
        // READ COMMITTED suffices: FOR UPDATE waits for the writer holding the head row, then reads the row as that
        // writer committed it (not as of an older snapshot), and every later statement takes a fresh snapshot, which
        // sees that writer's records. Only holders of this lock write records or the head, so the batch links to the
        // true head. (REPEATABLE READ would instead fail the waiter with a serialization error, to be retried.)
        // Two statements in one message: pg answers with a result per statement.
        const results = (await client.query(lockHead)) as unknown as Array<QueryResult<{ size: string; hash: string }>>
        const head = headOf(results[1]!)
        if (n > 0) {
          const earlier = await committedEarlier(client, drafts, keys)
          if (earlier !== undefined) {
            await client.query("ROLLBACK")
            recovered++
            return earlier
          }
        }
        const placed = Ledger.link(head, drafts)
        const last = placed[placed.length - 1]!
        const moved = await client.query(insertBatch, [
          placed.map((r) => r.index),
          placed.map((r) => r.kind),
          placed.map((r) => r.at),
          placed.map((r) => r.ref),
          placed.map((r) => r.body),
          placed.map((r) => r.digest),
          placed.map((r) => r.prevHash),
          placed.map((r) => r.hash),
          keys,
          last.index + 1,
          last.hash,
          head.size,
          placed.length
        ])
        if (moved.rowCount !== 1) throw new Definite("the head row moved under its lock")
        const committing = client.query("COMMIT")
        if (hook !== undefined) {
          committing.catch(() => {})
          const socket = (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream
          await hook({
            pid: (client as unknown as { processID: number }).processID,
            attempt: n,
            cut: () => socket.destroy()
          })
        }
        await committing
        commits++
        return placed
      },
      signal
    )

  const append = async (
    drafts: ReadonlyArray<Ledger.RecordDraft>,
    signal: AbortSignal
  ): Promise<ReadonlyArray<Ledger.LedgerRecord>> => {
    const keys = drafts.map(() => randomUUID())
    for (let n = 0; ; n++) {
      // The caller gave up (the service's append timeout): no new attempt.
      if (signal.aborted) throw new Definite("the append was abandoned")
      try {
        return await attempt(drafts, keys, n, signal)
      } catch (e) {
        if (e instanceof Definite || !isConnectionLoss(e) || n + 1 >= maxAttempts || signal.aborted || closed) throw e
        retries++
        await sleep(10 * 2 ** n + Math.random() * 10, signal)
      }
    }
  }

  return {
    description: t.description,
    writeMode: "batched",
    schema: t.schema,
    readOnly,
    migrated: settings.migrated,
    get commits() {
      return commits
    },
    get retries() {
      return retries
    },
    get recovered() {
      return recovered
    },
    head: run(async () => headOf(await pool.query(`SELECT size, hash FROM ${s}.head WHERE id`))),
    append: (drafts) =>
      readOnly ? refused : drafts.length === 0 ? Effect.succeed([]) : run((signal) => append(drafts, signal)),
    read: (from, limit) =>
      run(async () => {
        const rows = await pool.query<Array<unknown>>({
          text: `SELECT ${COLUMNS} FROM ${s}.records WHERE idx >= $1 ORDER BY idx LIMIT $2`,
          // An unbounded limit is LIMIT NULL: no limit.
          values: [from, Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : null],
          rowMode: "array"
        })
        return rows.rows.map(fromRow)
      }),
    scan: (from, visit) =>
      run(() =>
        withClient(pool, async (client) => {
          if (!Number.isSafeInteger(from) || from < 0) throw new Definite(`invalid scan start ${from}`)
          // One snapshot for the head row and every page, however long the scan and whoever appends meanwhile.
          await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
          try {
            const head = headOf(await client.query(`SELECT size, hash FROM ${s}.head WHERE id`))
            await client.query(
              `DECLARE egl_scan NO SCROLL CURSOR FOR SELECT ${COLUMNS} FROM ${s}.records WHERE idx >= ${from} ORDER BY idx`
            )
            let next = from
            let going = true
            while (going) {
              const page = await client.query<Array<unknown>>({
                text: `FETCH ${SCAN_PAGE} FROM egl_scan`,
                rowMode: "array"
              })
              for (const row of page.rows) {
                const r = fromRow(row)
                // Rows the head row does not count were not appended through it.
                going = visit(
                  r.index >= head.size
                    ? {
                        _corrupt: true,
                        index: r.index,
                        detail: `row ${r.index} lies beyond the head row (size ${head.size})`
                      }
                    : r
                )
                if (!going) break
                next = r.index + 1
              }
              if (page.rows.length < SCAN_PAGE) break
            }
            // Rows cut from the tail, with the head row left as it was.
            if (going && next < head.size) {
              visit({
                _corrupt: true,
                index: next,
                detail: `the head row counts ${head.size} records but the table ends at ${next}`
              })
            }
          } finally {
            await client.query("ROLLBACK").catch(() => {})
          }
        })
      ),
    findRef: (ref) =>
      run(async () => {
        const rows = await pool.query<Array<unknown>>({
          text: `SELECT ${COLUMNS} FROM ${s}.records WHERE ref = $1 ORDER BY idx`,
          values: [ref],
          rowMode: "array"
        })
        return rows.rows.flatMap((row) => {
          const r = fromRow(row)
          return Ledger.isCorrupt(r) ? [] : [r]
        })
      }),
    appendCheckpoint: (cp) =>
      readOnly
        ? refused
        : run(async () => {
            await pool.query(
              `INSERT INTO ${s}.checkpoints (size, head_hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)`,
              [cp.size, cp.headHash, cp.at, cp.keyId, cp.signature]
            )
          }),
    checkpoints: run(async () => {
      const rows = await pool.query<{ size: string; headHash: string; at: string; keyId: string; signature: string }>(
        `SELECT size, head_hash AS "headHash", at, key_id AS "keyId", signature FROM ${s}.checkpoints ORDER BY seq`
      )
      return rows.rows.map((r) => ({ ...r, size: Number(r.size) }))
    }),
    close: Effect.promise(async () => {
      if (closed) return
      closed = true
      await pool.end().catch(() => {})
    })
  }
}
