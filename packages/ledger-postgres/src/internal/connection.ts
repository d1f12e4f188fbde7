/**
 * Connecting to PostgreSQL: the connection URL and its `schema` parameter, the pool, checked-out clients that survive a
 * terminated connection, and what a pg error means for the caller (a lost connection, or the server's answer).
 */
import { DatabaseError, escapeIdentifier, Pool, type PoolClient } from "pg"

/** What every module of this package needs to reach its schema. */
export interface Target {
  /** The connection string handed to pg: the URL without the `schema` parameter. */
  readonly connectionString: string
  /** The schema holding the ledger's tables. */
  readonly schema: string
  /** `schema` quoted as an SQL identifier. */
  readonly quoted: string
  /** The URL with any password masked and no other query parameter, plus `?schema=`: safe to log and to paste. */
  readonly description: string
}

/** Schema names this package accepts: a plain lower-case identifier, the same quoted or not. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * Reads the URL and the schema: `options.schema`, else the URL's `schema` query parameter, else `public`. Throws an
 * Error whose message names the problem (never the password).
 */
export const target = (url: string, schemaOption: string | undefined): Target => {
  if (!url.startsWith("postgres://") && !url.startsWith("postgresql://")) {
    throw new Error("not a PostgreSQL URL (postgres://user@host:port/database)")
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new Error("not a valid PostgreSQL connection URL")
  }
  const schema = schemaOption ?? parsed.searchParams.get("schema") ?? "public"
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(`invalid schema name "${schema.slice(0, 80)}": use lower-case letters, digits and _ (at most 63)`)
  }
  parsed.searchParams.delete("schema")
  const connectionString = parsed.toString()
  // Query parameters may carry secrets (`?password=`, `sslkey=`): the description keeps only the schema.
  const user = parsed.username === "" ? "" : `${parsed.username}${parsed.password === "" ? "" : ":***"}@`
  const description = `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}?schema=${schema}`
  return { connectionString, schema, quoted: escapeIdentifier(schema), description }
}

/** Pool settings. */
export interface PoolOptions {
  readonly max: number
  readonly applicationName: string
  readonly statementTimeoutMs: number
  readonly readOnly: boolean
}

/** A pool whose idle connections may be terminated (by an operator, a failover) without crashing the process. */
export const makePool = (t: Target, options: PoolOptions): Pool => {
  // Session settings go in the startup packet's `options`, after any the URL gives. The server checks now and then
  // that the client is still there while a statement runs (PostgreSQL 14+): an append abandoned while it waits for
  // the head lock stops waiting instead of taking the lock for nobody. A read-only storage's sessions refuse writes,
  // whatever this module's code does.
  const url = new URL(t.connectionString)
  const given = url.searchParams.get("options")
  const settings = ["-c client_connection_check_interval=1000"]
  if (options.readOnly) settings.push("-c default_transaction_read_only=on")
  url.searchParams.set("options", [...(given === null ? [] : [given]), ...settings].join(" "))
  const pool = new Pool({
    connectionString: url.toString(),
    max: options.max,
    application_name: options.applicationName,
    statement_timeout: options.statementTimeoutMs,
    // A writer that vanished inside a transaction must not hold the head row for long: the server ends its session.
    idle_in_transaction_session_timeout: Math.max(options.statementTimeoutMs, 1000),
    connectionTimeoutMillis: options.statementTimeoutMs,
    idleTimeoutMillis: 30_000
  })
  // An idle connection that dies is dropped by the pool; the next checkout opens a new one.
  pool.on("error", () => {})
  return pool
}

/**
 * Runs `f` on a checked-out client. A client that failed (or was abandoned by an abort) is destroyed rather than
 * returned: its session may be inside an aborted transaction or gone.
 */
export const withClient = async <A>(
  pool: Pool,
  f: (client: PoolClient) => Promise<A>,
  signal?: AbortSignal
): Promise<A> => {
  const aborted = () => signal?.aborted === true
  const client = await pool.connect()
  if (aborted()) {
    client.release()
    throw new Error("aborted")
  }
  // A checked-out client that loses its connection between queries emits "error": without a listener it would
  // crash the process. The failure reaches the caller through its next query instead.
  const onError = () => {}
  client.on("error", onError)
  const onAbort = () => {
    void client.end().catch(() => {})
  }
  signal?.addEventListener("abort", onAbort, { once: true })
  let failure: Error | undefined
  try {
    return await f(client)
  } catch (e) {
    failure = e instanceof Error ? e : new Error(String(e))
    throw e
  } finally {
    signal?.removeEventListener("abort", onAbort)
    client.removeListener("error", onError)
    client.release(failure ?? (aborted() ? new Error("aborted") : undefined))
  }
}

/**
 * True when the connection was lost or ended by the server (terminated, shut down, reset): the request may or may not
 * have taken effect. False for an answer of the server (a constraint, a timeout, a syntax error), which is definite.
 */
export const isConnectionLoss = (e: unknown): boolean => {
  if (e instanceof DatabaseError) {
    const code = e.code ?? ""
    // Class 08: connection exception; 57P01–57P03: terminated by an administrator, crash or startup.
    return code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03"
  }
  return true
}

/** The message of a pg or network error, with its SQLSTATE. */
export const messageOf = (e: unknown): string => {
  if (e instanceof DatabaseError) return e.code === undefined ? e.message : `${e.message} (SQLSTATE ${e.code})`
  if (e instanceof AggregateError && e.errors.length > 0) return e.errors.map(messageOf).join("; ")
  if (e instanceof Error) return e.message !== "" ? e.message : e.name
  return String(e)
}

/** Waits `ms` milliseconds, or less when `signal` aborts. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener("abort", done)
      resolve()
    }
    signal?.addEventListener("abort", done, { once: true })
  })
