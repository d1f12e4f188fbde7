/**
 * Starts the reference app from its configuration: the backends (`Backends.open`), the governance instance over the
 * demo registry and policy, the tier queues when deployments run on BullMQ workers, the HTTP server; and stops it
 * cleanly (server closed, a final signed checkpoint, connections released).
 * @module
 */
import { createGovernance, type GovernanceInstance } from "@egl/core"
import { TierQueues } from "@egl/redis"
import type { AddressInfo } from "node:net"
import { createServer, type Server } from "node:http"
import { pino, type Logger } from "pino"
import { createApp } from "./App.ts"
import * as Backends from "./Backends.ts"
import type { Config } from "./Config.ts"
import * as Demo from "./Demo.ts"

export { ledgerOf } from "./Backends.ts"

/** A running app. */
export interface Running {
  readonly server: Server
  readonly governance: GovernanceInstance
  readonly url: string
  /** Stops accepting requests, waits for those in flight, then closes the governance instance and the backends. */
  stop(): Promise<void>
}

/** Starts the app; rejects when the configuration cannot work (bad ledger, key, policy, unreachable service). */
export const start = async (config: Config, logger?: Logger): Promise<Running> => {
  const log = logger ?? pino({ level: config.logLevel })
  const backends = await Backends.open(config, log)
  let governance: GovernanceInstance
  try {
    governance = await createGovernance({ registry: Demo.registry, policy: Demo.policy, ...backends.config })
  } catch (error) {
    await backends.close()
    throw error
  }
  const queues =
    config.pools === "bullmq"
      ? TierQueues.make({ url: config.redisUrl, prefix: config.redisPrefix, logger: log.child({ component: "pools" }) })
      : undefined
  const { app } = createApp({
    governance,
    apiKeys: Demo.apiKeys,
    bodyLimit: config.bodyLimit,
    logger: log,
    ...(queues !== undefined ? { queues } : {})
  })
  const server = createServer(app)
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 10_000
  server.requestTimeout = 30_000
  const release = async () => {
    await queues?.close()
    await governance.close()
    await backends.close()
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(config.port, config.host, () => resolve())
    })
  } catch (error) {
    await release()
    throw error
  }
  const { port } = server.address() as AddressInfo
  const url = `http://${config.host}:${port}`
  let stopping: Promise<void> | undefined
  return {
    server,
    governance,
    url,
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      }).then(release))
  }
}
