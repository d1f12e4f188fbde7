/**
 * A `CapabilityGuard.GrantStore` on PostgreSQL: the used single-use grants of every app instance in one table, so a
 * grant is used once across instances (SPEC §4, single use with expiry).
 *
 * `consume` is one statement, `INSERT … ON CONFLICT DO NOTHING RETURNING`: of concurrent uses of one grant, from any
 * instance, the primary key lets exactly one insert, and that one is `"consumed"`; every other is `"reused"`. An expired
 * grant is `"expired"` without touching the database. Grants that expired long ago (`retentionMs`, default one hour, a
 * margin for clocks that disagree) are deleted now and then. Every pg error is a
 * {@link CapabilityGuard.GrantStoreUnavailable}, so the grant is not used (fail closed); when the connection is lost
 * after the insert was sent, the grant may be spent without anyone using it, never used twice.
 *
 * The table lives in the ledger's schema (same URL, same `schema` option as {@link PostgresLedger}); opening the store
 * creates or migrates the schema as the ledger does.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { createGovernance } from "@egl/core"
 * import { PostgresGrantStore, PostgresLedger } from "@egl/ledger-postgres"
 *
 * const url = "postgres://egl@db:5432/egl?schema=egl"
 * const grants = await Effect.runPromise(PostgresGrantStore.make(url))
 * const egl = await createGovernance({ registry, policy, keys, ledger: { storage: PostgresLedger.open(url) }, grants })
 * // … on shutdown:
 * await egl.close()
 * await Effect.runPromise(grants.close)
 * ```
 * @module
 */
import { CapabilityGuard } from "@egl/core"
import { Effect, type Scope } from "effect"
import { makePool, messageOf, target } from "./internal/connection.ts"
import * as Schema from "./internal/schema.ts"

/** Grant store options. */
export interface Options {
  /** The schema of the ledger whose grants these are (default: the URL's `schema` query parameter, else `public`). */
  readonly schema?: string | undefined
  /** Most connections (default 4). */
  readonly pool?: number | undefined
  /** Server-side limit of each statement and of connecting (default 5000 ms). */
  readonly statementTimeoutMs?: number | undefined
  /** `application_name` of the sessions (default `egl-grants`). */
  readonly applicationName?: string | undefined
  /** How long after its expiry a used grant is kept before deletion (default 3 600 000 ms). */
  readonly retentionMs?: number | undefined
  /** Least time between two deletions of long-expired grants (default 60 000 ms). */
  readonly sweepIntervalMs?: number | undefined
}

/** A grant store shared by the instances that use one PostgreSQL schema. */
export interface PostgresGrantStore extends CapabilityGuard.GrantStore {
  /** The database and schema, password masked. */
  readonly description: string
  /** Deletes grants that expired more than `retentionMs` before `nowMs`; answers how many. */
  sweep(nowMs: number): Effect.Effect<number, CapabilityGuard.GrantStoreUnavailable>
  /** Ends the connection pool. */
  readonly close: Effect.Effect<void>
}

/**
 * Connects to the database at `url`, creating or migrating the schema if needed; the caller must run `close`. Fails
 * with {@link CapabilityGuard.GrantStoreUnavailable} when the URL is invalid or the database cannot be used.
 *
 * @example
 * ```ts
 * const grants = await Effect.runPromise(PostgresGrantStore.make(process.env["DATABASE_URL"]!, { schema: "egl" }))
 * ```
 */
export const make = (
  url: string,
  options?: Options
): Effect.Effect<PostgresGrantStore, CapabilityGuard.GrantStoreUnavailable> =>
  Effect.gen(function* () {
    const t = yield* Effect.try({
      try: () => target(url, options?.schema),
      catch: (e) => new CapabilityGuard.GrantStoreUnavailable({ detail: `postgres: ${messageOf(e)}` })
    })
    const unavailable = (e: unknown) =>
      new CapabilityGuard.GrantStoreUnavailable({ detail: `${t.description}: ${messageOf(e)}` })
    const pool = makePool(t, {
      max: options?.pool ?? 4,
      applicationName: options?.applicationName ?? "egl-grants",
      statementTimeoutMs: options?.statementTimeoutMs ?? 5000,
      readOnly: false
    })
    yield* Effect.tryPromise({ try: () => Schema.migrate(pool, t), catch: unavailable }).pipe(
      Effect.tapError(() => Effect.promise(() => pool.end().catch(() => {})))
    )
    const retentionMs = options?.retentionMs ?? 3_600_000
    const sweepIntervalMs = options?.sweepIntervalMs ?? 60_000
    const table = `${t.quoted}.grants`
    let sweepAt = 0
    let closed = false

    const sweep = (nowMs: number) =>
      Effect.tryPromise({
        try: async () =>
          (await pool.query(`DELETE FROM ${table} WHERE expires_at_ms < $1`, [Math.floor(nowMs - retentionMs)]))
            .rowCount ?? 0,
        catch: unavailable
      })

    const insert = (id: string, expiresAtMs: number) =>
      Effect.tryPromise({
        try: async () => {
          const inserted = await pool.query(
            `INSERT INTO ${table} (id, expires_at_ms) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING 1`,
            [id, Math.ceil(expiresAtMs)]
          )
          return inserted.rowCount === 1 ? ("consumed" as const) : ("reused" as const)
        },
        catch: unavailable
      })

    return {
      description: t.description,
      consume: (id, expiresAtMs, nowMs) =>
        Effect.suspend(() => {
          if (nowMs >= expiresAtMs) return Effect.succeed("expired" as const)
          if (nowMs >= sweepAt) {
            sweepAt = nowMs + sweepIntervalMs
            // Housekeeping beside the request, never in its way: a failed sweep is retried at the next interval.
            void Effect.runPromise(Effect.ignore(sweep(nowMs)))
          }
          return insert(id, expiresAtMs)
        }),
      sweep,
      close: Effect.promise(async () => {
        if (closed) return
        closed = true
        await pool.end().catch(() => {})
      })
    } satisfies PostgresGrantStore
  })

/** {@link make} with `close` tied to the current scope. */
export const open = (
  url: string,
  options?: Options
): Effect.Effect<PostgresGrantStore, CapabilityGuard.GrantStoreUnavailable, Scope.Scope> =>
  Effect.acquireRelease(make(url, options), (s) => s.close)
