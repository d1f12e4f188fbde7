/**
 * A tier worker of the reference app: `EGL_WORKER_TIER=3 pnpm --filter @egl/serving-api worker` (or `… worker -- 3`).
 * It serves one tier's BullMQ queue only (tier 3: one deployment at a time), on the same ledger, grants and signing key
 * as the API instances: it re-verifies every envelope it is handed (seal, ledger, tier, expiry, unused grant), runs the
 * deployment and records its outcome before answering.
 */
import { createGovernance, type ExecutionClass } from "@egl/core"
import { TierWorker } from "@egl/redis"
import { pino } from "pino"
import * as Backends from "./Backends.ts"
import * as Config from "./Config.ts"
import * as Demo from "./Demo.ts"
import { ACTION } from "./DeployModel.ts"
import * as Deployment from "./Deployment.ts"

const config = Config.fromEnv()
const logger = pino({ level: config.logLevel })
const tier = Number(process.argv[2] ?? process.env["EGL_WORKER_TIER"])
if (![0, 1, 2, 3].includes(tier)) {
  logger.fatal(
    `the worker's tier (argument or EGL_WORKER_TIER) must be 0, 1, 2 or 3, not "${process.argv[2] ?? process.env["EGL_WORKER_TIER"]}"`
  )
  process.exit(2)
}
const backends = await Backends.open(config, logger).catch((error: unknown) => {
  logger.fatal({ err: error }, "the worker's backends could not be opened")
  process.exit(1)
})
const governance = await createGovernance({ registry: Demo.registry, policy: Demo.policy, ...backends.config })
const worker = await TierWorker.start({
  governance,
  tier: tier as ExecutionClass.Tier,
  url: config.redisUrl,
  prefix: config.redisPrefix,
  handlers: { [ACTION]: (input, { envelope }) => Deployment.deploy(envelope, input) },
  logger: logger.child({ component: "worker" })
})
logger.info(
  { tier, queue: worker.queue, worker: worker.worker, concurrency: worker.concurrency },
  `tier ${tier} worker ready`
)

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void worker
      .close()
      .then(() => governance.close())
      .then(() => backends.close())
      .then(() => process.exit(0))
  })
}
