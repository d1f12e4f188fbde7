/**
 * The tier worker process of the dispatch benchmark (`bench/distributed.ts`): its own governance instance on the shared
 * PostgreSQL ledger and Redis grant store, subscribed to one tier's BullMQ queue, as a deployment runs one. Its handler
 * answers with the wall-clock time it started (`performance.timeOrigin + performance.now()`, sub-millisecond, comparable
 * with the producer's on the same machine). Prints `ready <identity>`; closes on SIGTERM.
 * env: EGL_BENCH_PG_URL, EGL_BENCH_PRIVATE_KEY, EGL_BENCH_TIER, EGL_BENCH_QUEUE_PREFIX, EGL_BENCH_GRANT_PREFIX, REDIS_URL.
 */
import { createGovernance, type ExecutionClass } from "@egl/core"
import { PostgresLedger } from "@egl/ledger-postgres"
import { RedisGrantStore, TierWorker } from "@egl/redis"
import { policy, registry } from "../distributed/support/scenario.ts"

const env = (name: string): string => {
  const v = process.env[name]
  if (v === undefined || v === "") throw new Error(`${name} is required`)
  return v
}

const grants = RedisGrantStore.make({ prefix: env("EGL_BENCH_GRANT_PREFIX") })
const governance = await createGovernance({
  registry,
  policy,
  keys: { privateKeyPem: env("EGL_BENCH_PRIVATE_KEY") },
  ledger: { storage: PostgresLedger.open(env("EGL_BENCH_PG_URL"), { applicationName: "egl-bench-worker" }) },
  ledgerOptions: { checkpointIntervalMs: 0 },
  grants,
  logger: false
})

const run: TierWorker.Handler = async (input) => ({ startedAt: performance.timeOrigin + performance.now(), input })

const worker = await TierWorker.start({
  governance,
  tier: Number(env("EGL_BENCH_TIER")) as ExecutionClass.Tier,
  prefix: env("EGL_BENCH_QUEUE_PREFIX"),
  handlers: { "jobs.transform": run, "jobs.file": run, "jobs.network": run, "jobs.privileged": run }
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
