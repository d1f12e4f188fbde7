/**
 * The tables of a ledger schema and their migrations: numbered steps, each run once, in its own transaction, under a
 * transaction-scoped advisory lock of the schema, so instances starting at once wait for each other and never run a
 * step twice. A database of a newer version is refused rather than misread.
 */
import type { Pool, PoolClient } from "pg"
import { Ledger } from "@egl/core"
import { type Target, withClient } from "./connection.ts"

/**
 * Step `i` takes a schema from version `i` to `i + 1`. Append only: a shipped step never changes. `$S` stands for the
 * quoted schema name.
 */
const STEPS: ReadonlyArray<string> = [
  // 1: the chain. `head` is the single row every append locks; `idx` is placed by `Ledger.link` under that lock, so it
  // is gapless (a sequence would leave gaps on rollback). The unique previous hash makes a fork impossible even for a
  // writer that skipped the lock; the unique idempotency key makes a retried batch land at most once.
  `CREATE TABLE $S.head (
     id boolean PRIMARY KEY DEFAULT true CHECK (id),
     size bigint NOT NULL,
     hash text NOT NULL
   );
   INSERT INTO $S.head (id, size, hash) VALUES (true, 0, '${Ledger.GENESIS_HASH}');
   CREATE TABLE $S.records (
     idx bigint PRIMARY KEY,
     kind text NOT NULL,
     at text NOT NULL,
     ref text NOT NULL,
     body text NOT NULL,
     digest text NOT NULL,
     prev_hash text NOT NULL UNIQUE,
     hash text NOT NULL,
     idempotency_key uuid NOT NULL UNIQUE
   );
   CREATE INDEX records_ref ON $S.records (ref, idx);
   CREATE TABLE $S.checkpoints (
     seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     size bigint NOT NULL,
     head_hash text NOT NULL,
     at text NOT NULL,
     key_id text NOT NULL,
     signature text NOT NULL
   );`,
  // 2: used single-use grants, shared by every instance (`PostgresGrantStore`).
  `CREATE TABLE $S.grants (
     id text PRIMARY KEY,
     expires_at_ms bigint NOT NULL,
     consumed_at timestamptz NOT NULL DEFAULT now()
   );
   CREATE INDEX grants_expires ON $S.grants (expires_at_ms);`
]

/** Version of the schema this package writes. */
export const SCHEMA_VERSION = STEPS.length

/** Tables every version has; a read-only open refuses a schema without them. */
const TABLES = ["meta", "head", "records", "checkpoints"] as const

const versionOf = async (client: PoolClient, t: Target): Promise<number | undefined> => {
  const result = await client.query<{ value: string }>(
    `SELECT value FROM ${t.quoted}.meta WHERE key = 'schema_version'`
  )
  const value = result.rows[0]?.value
  if (value === undefined) return undefined
  const version = Number(value)
  if (!Number.isInteger(version) || version < 0) throw new Error(`schema version "${value}" is not a version`)
  return version
}

/**
 * Brings the schema to {@link SCHEMA_VERSION}, creating it if needed; answers the steps this call ran. Each step runs
 * in a transaction holding `pg_advisory_xact_lock` of the schema, after re-reading the version under that lock.
 */
export const migrate = (pool: Pool, t: Target): Promise<ReadonlyArray<number>> =>
  withClient(pool, async (client) => {
    // A current schema needs no lock and no DDL (nor the privileges DDL needs): the common start.
    const present = await client.query<{ present: boolean }>("SELECT to_regclass($1) IS NOT NULL AS present", [
      `${t.quoted}.meta`
    ])
    if (present.rows[0]?.present === true) {
      const version = await versionOf(client, t)
      if (version === SCHEMA_VERSION) return []
      if (version !== undefined && version > SCHEMA_VERSION) {
        throw new Error(`schema version ${version} is newer than this module supports (${SCHEMA_VERSION})`)
      }
    }
    const ran: Array<number> = []
    for (;;) {
      await client.query("BEGIN")
      try {
        await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`egl/ledger-postgres:${t.schema}`])
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${t.quoted}`)
        await client.query(`CREATE TABLE IF NOT EXISTS ${t.quoted}.meta (key text PRIMARY KEY, value text NOT NULL)`)
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${t.quoted}.migrations (
             step integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now(),
             backend_pid integer NOT NULL DEFAULT pg_backend_pid()
           )`
        )
        const version = (await versionOf(client, t)) ?? 0
        if (version > SCHEMA_VERSION) {
          throw new Error(`schema version ${version} is newer than this module supports (${SCHEMA_VERSION})`)
        }
        if (version === SCHEMA_VERSION) {
          await client.query("COMMIT")
          return ran
        }
        await client.query(STEPS[version]!.replaceAll("$S", t.quoted))
        await client.query(`INSERT INTO ${t.quoted}.migrations (step) VALUES ($1)`, [version + 1])
        await client.query(
          `INSERT INTO ${t.quoted}.meta (key, value) VALUES ('schema_version', $1)
           ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`,
          [String(version + 1)]
        )
        await client.query("COMMIT")
        ran.push(version + 1)
      } catch (e) {
        await client.query("ROLLBACK").catch(() => {})
        throw e
      }
    }
  })

/** Checks, without writing, that the schema holds a ledger of the version this module reads. */
export const check = (pool: Pool, t: Target): Promise<void> =>
  withClient(pool, async (client) => {
    const found = await client.query<{ name: string }>(
      "SELECT tablename AS name FROM pg_catalog.pg_tables WHERE schemaname = $1",
      [t.schema]
    )
    const names = new Set(found.rows.map((r) => r.name))
    if (!TABLES.every((name) => names.has(name))) {
      throw new Error(`no ledger in schema "${t.schema}" (a read-only open creates nothing)`)
    }
    const version = await versionOf(client, t)
    // Every version from 1 holds the chain as this module reads it; a newer one may not.
    if (version === undefined || version < 1) {
      throw new Error(`schema "${t.schema}" holds no ledger version (a read-only open migrates nothing)`)
    }
    if (version > SCHEMA_VERSION) {
      throw new Error(`schema version ${version} is newer than this module supports (${SCHEMA_VERSION})`)
    }
  })
