/**
 * Quickstart: admits and denies the reference scenario's requests, executes one, and verifies the ledger.
 *
 *   pnpm start            # SQLite ledger under ./.data (the embedded default)
 *   EGL_LEDGER=memory pnpm start
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { createGovernance, Sealer, type GovernanceConfig } from "@egl/core"
import { SqliteLedger } from "@egl/ledger-sqlite"
import { policy, registry } from "./scenario.ts"

const ledgerOf = (spec: string | undefined): GovernanceConfig["ledger"] => {
  if (spec === "memory") return "memory"
  if (spec?.startsWith("file:")) return { file: spec.slice(5) }
  const path = spec?.startsWith("sqlite:") ? spec.slice(7) : join(process.cwd(), ".data", "quickstart.db")
  mkdirSync(join(path, ".."), { recursive: true })
  return { storage: SqliteLedger.open(path) }
}

// The signing key must outlive the process as long as the ledger does, or yesterday's checkpoints stop verifying:
// generate one on the first run and keep it beside the ledger (production loads it from a secret store).
const keyFile = join(process.cwd(), ".data", "signing-key.pem")
mkdirSync(join(keyFile, ".."), { recursive: true })
if (!existsSync(keyFile)) writeFileSync(keyFile, Sealer.generateKeyPair().privateKeyPem, { mode: 0o600 })

const egl = await createGovernance({
  registry,
  policy,
  keys: { privateKeyPem: readFileSync(keyFile, "utf8") },
  // The runtime fingerprint covers the workspace lockfile: a dependency change is a new runtime.
  runtime: { lockfiles: [join(process.cwd(), "..", "..", "pnpm-lock.yaml")].filter((f) => existsSync(f)) },
  ledger: ledgerOf(process.env.EGL_LEDGER)
})

const principals = {
  alice: { id: "alice", kind: "user", roles: ["ml-engineer"] },
  bob: { id: "bob", kind: "user", roles: ["ml-admin"] },
  carol: { id: "carol", kind: "user", roles: ["viewer"] }
} as const

const model = { id: "llama-3-8b", version: "2026.11.1" }
const cases = [
  { who: "alice", environment: "dev", resources: { gpus: 2, memoryGiB: 40, replicas: 2 } },
  { who: "alice", environment: "staging", resources: { gpus: 2, memoryGiB: 40, replicas: 6 } },
  { who: "alice", environment: "dev", resources: { gpus: 8, memoryGiB: 40, replicas: 1 } },
  { who: "carol", environment: "dev", resources: { gpus: 1, memoryGiB: 16, replicas: 1 } },
  { who: "alice", environment: "prod", resources: { gpus: 4, memoryGiB: 80, replicas: 2 } },
  { who: "alice", environment: "prod", resources: { gpus: 4, memoryGiB: 80, replicas: 2 }, escalation: true },
  { who: "bob", environment: "prod", resources: { gpus: 8, memoryGiB: 80, replicas: 2 }, escalation: true },
  { who: "bob", environment: "prod", resources: { gpus: 32, memoryGiB: 80, replicas: 2 }, escalation: true },
  {
    who: "alice",
    environment: "dev",
    resources: { gpus: 1, memoryGiB: 16, replicas: 1 },
    dataClassification: "restricted"
  }
] as const

for (const c of cases) {
  const result = await egl.admit({
    tool: "serving",
    action: "deploy_model",
    subject: principals[c.who],
    scope: {
      environment: c.environment,
      ...("dataClassification" in c ? { dataClassification: c.dataClassification } : {})
    },
    input: { model },
    requested: {
      resources: c.resources,
      ...("escalation" in c ? { escalation: { reason: "PRIVILEGED_MUTATION", justification: "release 2026.11" } } : {})
    }
  })
  const e = result.envelope
  console.log(
    `${c.who.padEnd(5)} ${c.environment.padEnd(7)} gpus=${String(c.resources.gpus).padEnd(2)} → ${result.ok ? "ADMITTED" : "DENIED  "} ` +
      `${result.reasonCodes.join(",").padEnd(40)} tier=${e?.granted?.tier ?? "-"} granted=${JSON.stringify(e?.granted?.resources ?? {})} ledger#${e?.ledger?.index ?? "-"}`
  )
}

// Execute one admitted request: dispatch uses the single-use grant, the outcome is recorded with its output digest.
const admitted = await egl.admit({
  tool: "serving",
  action: "deploy_model",
  subject: principals.bob,
  scope: { environment: "prod" },
  input: { model },
  requested: {
    resources: { gpus: 8, replicas: 2 },
    escalation: { reason: "PRIVILEGED_MUTATION", justification: "release" }
  }
})
if (admitted.ok) {
  const run = await egl.execute(admitted, async (envelope) => ({
    deployment: `dep-${envelope.id.slice(-6)}`,
    replicas: envelope.granted?.resources.replicas
  }))
  console.log("\nexecuted:", run.ok ? run.output : run.error._tag)
  const again = await egl.execute(admitted, async () => "never runs")
  console.log(
    "replayed grant:",
    again.ok ? "EXECUTED (bug!)" : again.error._tag,
    "ok" in again && !again.ok && "code" in again.error ? again.error.code : ""
  )
  console.log("\nsealed envelope:", JSON.stringify(admitted.envelope, null, 2))
}

console.log("\nledger verification:", await egl.verifyLedger())
await egl.close()
