/**
 * Real ledgers for the CLI tests: the reference scenario admitted, denied and executed through `createGovernance`
 * with a fixed key, on a JSONL file and on SQLite; copies to tamper with; the key files an auditor would hold.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import { createGovernance, Sealer, type GovernanceConfig } from "@egl/core"
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
  readonly path: string
  /** Records in the ledger. */
  readonly size: number
  /** An envelope that was admitted and executed (it has execution records). */
  readonly executed: string
  /** An envelope that was denied. */
  readonly denied: string
}

let files = 0

/**
 * Builds a ledger: the policy record, then admissions (one denied, one executed), closed cleanly so a final signed
 * checkpoint covers the whole chain. Checkpoints every 4 records, so there are several.
 */
export const build = async (kind: "file" | "sqlite"): Promise<Built> => {
  const path = join(dir, `ledger-${files++}.${kind === "file" ? "jsonl" : "db"}`)
  const ledger: GovernanceConfig["ledger"] = kind === "file" ? { file: path } : { storage: SqliteLedger.open(path) }
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
