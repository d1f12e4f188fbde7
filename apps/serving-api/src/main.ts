/**
 * Entry point of the reference app: `pnpm start` (from the repository root) or `pnpm --filter @egl/serving-api start`.
 */
import { pino } from "pino"
import * as Config from "./Config.ts"
import { start } from "./Server.ts"

const config = Config.fromEnv()
const logger = pino({ level: config.logLevel })
const running = await start(config, logger).catch((error: unknown) => {
  logger.fatal({ err: error }, "the serving API could not start")
  process.exit(1)
})
const ledger =
  config.ledger.kind === "postgres"
    ? "postgres"
    : config.ledger.kind === "memory"
      ? "memory"
      : `${config.ledger.kind}:${config.ledger.path}`
logger.info({ url: running.url, ledger }, `serving API listening on ${running.url} (ledger ${ledger})`)

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    logger.info({ signal }, "stopping")
    running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "stop failed")
        process.exit(1)
      }
    )
  })
}
