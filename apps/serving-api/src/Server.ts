/**
 * Starts the reference app from its configuration: the signing key, the ledger backend named by `EGL_LEDGER`, the
 * governance instance over the demo registry and policy, the HTTP server; and stops it cleanly (server closed, a final
 * signed checkpoint, ledger released).
 * @module
 */
import { createGovernance, type GovernanceConfig, type GovernanceInstance } from "@egl/core"
import { SqliteLedger } from "@egl/ledger-sqlite"
import { mkdirSync } from "node:fs"
import type { AddressInfo } from "node:net"
import { createServer, type Server } from "node:http"
import { dirname } from "node:path"
import { pino, type Logger } from "pino"
import { createApp } from "./App.ts"
import type { Config } from "./Config.ts"
import * as Demo from "./Demo.ts"
import * as SigningKey from "./SigningKey.ts"

/** A running app. */
export interface Running {
  readonly server: Server
  readonly governance: GovernanceInstance
  readonly url: string
  /** Stops accepting requests, waits for those in flight, then closes the governance instance. */
  stop(): Promise<void>
}

/** The ledger backend of a configuration. */
export const ledgerOf = (config: Config): GovernanceConfig["ledger"] => {
  const url = config.ledger
  switch (url.kind) {
    case "memory":
      return "memory"
    case "file":
      mkdirSync(dirname(url.path), { recursive: true })
      return { file: url.path }
    case "sqlite":
      mkdirSync(dirname(url.path), { recursive: true })
      return { storage: SqliteLedger.open(url.path) }
    case "postgres":
      throw new Error("EGL_LEDGER=postgres://… needs @egl/ledger-postgres, which this version does not include yet")
  }
}

/** Starts the app; rejects when the configuration cannot work (bad ledger, key, policy). */
export const start = async (config: Config, logger?: Logger): Promise<Running> => {
  const log = logger ?? pino({ level: config.logLevel, redact: ["req.headers.authorization"] })
  const governance = await createGovernance({
    registry: Demo.registry,
    policy: Demo.policy,
    keys: { privateKeyPem: SigningKey.loadOrCreate(config.dataDir) },
    ledger: ledgerOf(config),
    logger: log.child({ component: "egl" })
  })
  const { app } = createApp({ governance, apiKeys: Demo.apiKeys, bodyLimit: config.bodyLimit, logger: log })
  const server = createServer(app)
  server.keepAliveTimeout = 5_000
  server.headersTimeout = 10_000
  server.requestTimeout = 30_000
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(config.port, config.host, () => resolve())
    })
  } catch (error) {
    await governance.close()
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
      }).then(() => governance.close()))
  }
}
