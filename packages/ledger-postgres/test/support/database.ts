/**
 * The real PostgreSQL every test of this package runs against (`DATABASE_URL`, default the local `test` database), and
 * schemas of its own for each test file: `egl_test_<name>_<random>…`, all dropped after the file.
 */
import { randomBytes } from "node:crypto"
import { basename } from "node:path"
import pg from "pg"
import { afterAll } from "vitest"

/** The database of the tests. */
export const DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"

/** A connection string for `schema` (the `schema` query parameter the backend reads). */
export const urlOf = (schema: string): string => {
  const url = new URL(DATABASE_URL)
  url.searchParams.set("schema", schema)
  return url.toString()
}

/**
 * A schema prefix for this test file, with an admin pool to inspect and tamper with its tables; every schema that
 * starts with the prefix is dropped after the file, and the pool ended.
 */
export const testDatabase = (name: string) => {
  const prefix = `egl_test_${name}_${randomBytes(4).toString("hex")}`
  const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 3, application_name: `${prefix}_admin` })
  admin.on("error", () => {})
  let schemas = 0
  afterAll(async () => {
    const found = await admin.query<{ name: string }>(
      "SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1)",
      [prefix]
    )
    for (const { name: schema } of found.rows) await admin.query(`DROP SCHEMA "${schema}" CASCADE`)
    await admin.end()
  })
  return {
    prefix,
    admin,
    /** A new schema name (nothing is created until a backend opens it). */
    fresh: (): string => `${prefix}_${schemas++}`,
    /**
     * The schema of a ledger fixture "path" (`ledgerFixture` hands out file paths): its base name, as an identifier.
     */
    schemaOfPath: (path: string): string => `${prefix}_${basename(path).replace(/[^a-z0-9_]/g, "_")}`,
    /** Runs SQL as the administrator. */
    sql: <R extends pg.QueryResultRow = any>(text: string, values?: ReadonlyArray<unknown>) =>
      admin.query<R>(text, values as Array<unknown>)
  }
}
