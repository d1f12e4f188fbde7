/**
 * Real ledgers for the CLI tests: the reference scenario admitted, denied and executed through `createGovernance`
 * with a fixed key, on a JSONL file, on SQLite and on PostgreSQL (a schema of its own, dropped after the test file);
 * copies to tamper with; the key files an auditor would hold.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import { createGovernance, Sealer, type GovernanceConfig } from "@egl/core"
import { PostgresLedger } from "@egl/ledger-postgres"
import { SqliteLedger } from "@egl/ledger-sqlite"
import { afterAll } from "vitest"
import { policy, registry } from "../../../../examples/quickstart/src/scenario.ts"
import { capture } from "../../src/Io.ts"
import { main } from "../../src/main.ts"

/** Runs `f` on a read-write connection to a SQLite file. */
export const tamper = (file: string, f: (db: Database.Database) => void) => {
  const db = new Database(file)
  try {
    f(db)
  } finally {
    db.close()
  }
}

/** A temporary directory, removed after the test file. */
export const tempDir = (name: string): string => {
  const dir = mkdtempSync(join(tmpdir(), `egl-cli-${name}-`))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

export const dir = tempDir("ledgers")

/** The signing key of every test ledger, and the files an auditor holds. */
export const keys = Sealer.generateKeyPair()
export const publicKeyFile = join(dir, "egl.pub")
writeFileSync(publicKeyFile, keys.publicKeyPem)
export const privateKeyFile = join(dir, "egl.key")
writeFileSync(privateKeyFile, keys.privateKeyPem, { mode: 0o600 })
export const otherPublicKeyFile = join(dir, "other.pub")
writeFileSync(otherPublicKeyFile, Sealer.generateKeyPair().publicKeyPem)

const principals = {
  alice: { id: "alice", kind: "user", roles: ["ml-engineer"] },
  bob: { id: "bob", kind: "user", roles: ["ml-admin"] },
  carol: { id: "carol", kind: "user", roles: ["viewer"] }
} as const

/** A ledger built from the reference scenario. */
export interface Built {
  /** The file, or the PostgreSQL URL with its `?schema=`. */
  readonly path: string
  /** Records in the ledger. */
  readonly size: number
  /** An envelope that was admitted and executed (it has execution records). */
  readonly executed: string
  /** An envelope that was denied. */
  readonly denied: string
}

let files = 0

/** The test database (`DATABASE_URL`, default the local `test` database). */
export const DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
/** Prefix of this test file's PostgreSQL schemas. */
const schemaPrefix = `egl_test_cli_${randomBytes(4).toString("hex")}`
let schemas = 0

/** Runs SQL on the test database through psql (as someone with database access would), answering its output. */
export const psql = (sql: string): string =>
  execFileSync("psql", [DATABASE_URL, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"]
  }).trim()

afterAll(() => {
  if (schemas === 0) return
  const found = psql(`SELECT nspname FROM pg_namespace WHERE starts_with(nspname, '${schemaPrefix}')`)
  for (const schema of found.split("\n").filter((s) => s !== "")) psql(`DROP SCHEMA "${schema}" CASCADE`)
})

/** The PostgreSQL ledger URL of a new schema (`?schema=`), as `egl` takes it. */
export const postgresUrl = (): string => {
  const url = new URL(DATABASE_URL)
  url.searchParams.set("schema", `${schemaPrefix}_${schemas++}`)
  return url.toString()
}

/**
 * Builds a ledger: the policy record, then admissions (one denied, one executed), closed cleanly so a final signed
 * checkpoint covers the whole chain. Checkpoints every 4 records, so there are several.
 */
export const build = async (kind: "file" | "sqlite" | "postgres"): Promise<Built> => {
  const path = kind === "postgres" ? postgresUrl() : join(dir, `ledger-${files++}.${kind === "file" ? "jsonl" : "db"}`)
  const ledger: GovernanceConfig["ledger"] =
    kind === "file"
      ? { file: path }
      : { storage: kind === "sqlite" ? SqliteLedger.open(path) : PostgresLedger.open(path) }
  const egl = await createGovernance({ registry, policy, keys, ledger, ledgerOptions: { checkpointEvery: 4 } })
  const admit = (who: keyof typeof principals, environment: "dev" | "prod", gpus: number, escalation = false) =>
    egl.admit({
      tool: "serving",
      action: "deploy_model",
      subject: principals[who],
      scope: { environment },
      input: { model: { id: "llama-3-8b", version: "2026.11.1" } },
      requested: {
        resources: { gpus, replicas: 2 },
        ...(escalation ? { escalation: { reason: "PRIVILEGED_MUTATION", justification: "release" } } : {})
      }
    })
  try {
    await admit("alice", "dev", 2)
    const denied = await admit("carol", "dev", 1)
    await admit("alice", "dev", 8)
    const admitted = await admit("bob", "prod", 8, true)
    if (!admitted.ok || denied.ok || denied.envelope === undefined) throw new Error("the scenario did not run")
    const run = await egl.execute(admitted, async () => ({ deployed: true }))
    if (!run.ok) throw new Error("the execution failed")
    await admit("alice", "dev", 1)
    const { length } = await egl.verifyLedger()
    return { path, size: length, executed: admitted.envelope.id, denied: denied.envelope.id }
  } finally {
    await egl.close()
  }
}

/** A copy of a built ledger (records, and the checkpoint file of a JSONL ledger) to tamper with. */
export const copy = (built: Built): string => {
  const extension = built.path.endsWith(".db") ? "db" : "jsonl"
  const path = join(dir, `copy-${files++}.${extension}`)
  copyFileSync(built.path, path)
  if (existsSync(`${built.path}.checkpoints`)) copyFileSync(`${built.path}.checkpoints`, `${path}.checkpoints`)
  return path
}

/** Runs `egl` in-process; answers the exit code and what it printed. */
export const egl = async (...argv: ReadonlyArray<string>) => {
  const io = capture()
  const code = await main(argv, io)
  return { code, out: io.out, err: io.err }
}

/** Runs `egl … --json` in-process; answers the exit code and the parsed document (stderr must stay empty). */
export const eglJson = async (...argv: ReadonlyArray<string>) => {
  const { code, out, err } = await egl(...argv, "--json")
  if (err !== "") throw new Error(`--json wrote to stderr: ${err}`)
  return { code, json: JSON.parse(out) as Record<string, any> }
}
