/**
 * A tier worker process, as a deployment runs one: its own governance instance on the shared SQLite ledger and the
 * shared Redis grant store, subscribed to one tier's queue. Prints `ready <identity>` once it takes jobs; closes cleanly
 * on SIGTERM. env: EGL_LEDGER (SQLite path), EGL_TEST_PRIVATE_KEY, EGL_TIER, EGL_QUEUE_PREFIX, EGL_GRANT_PREFIX,
 * REDIS_URL, EGL_CONCURRENCY (optional).
 */
import { createGovernance, type ExecutionClass } from "@egl/core"
import { SqliteLedger } from "@egl/ledger-sqlite"
import { RedisGrantStore, TierWorker } from "@egl/redis"
import { policy, registry } from "./scenario.ts"

const env = (name: string): string => {
  const v = process.env[name]
  if (v === undefined || v === "") throw new Error(`${name} is required`)
  return v
}

const tier = Number(env("EGL_TIER")) as ExecutionClass.Tier
const grants = RedisGrantStore.make({ prefix: env("EGL_GRANT_PREFIX") })
const governance = await createGovernance({
  registry,
  policy,
  keys: { privateKeyPem: env("EGL_TEST_PRIVATE_KEY") },
  ledger: { storage: SqliteLedger.open(env("EGL_LEDGER")) },
  ledgerOptions: { checkpointIntervalMs: 0 },
  grants
})

const run: TierWorker.Handler = async (input, { envelope, worker }) => {
  const i = (input ?? {}) as { slowMs?: number }
  const startedAt = Date.now()
  if (i.slowMs !== undefined) await new Promise((r) => setTimeout(r, i.slowMs))
  return { echo: input, tier: envelope.granted?.tier, pid: process.pid, worker, startedAt, endedAt: Date.now() }
}

const worker = await TierWorker.start({
  governance,
  tier,
  prefix: env("EGL_QUEUE_PREFIX"),
  handlers: { "jobs.transform": run, "jobs.file": run, "jobs.network": run, "jobs.privileged": run },
  ...(process.env["EGL_CONCURRENCY"] !== undefined ? { concurrency: Number(process.env["EGL_CONCURRENCY"]) } : {})
})
process.stdout.write(`ready ${worker.worker}\n`)

process.once("SIGTERM", () => {
  void (async () => {
    await worker.close()
    await governance.close()
    await grants.close()
    process.exit(0)
  })()
})
