/**
 * The backends of one app or worker process, from its configuration: the ledger storage named by `EGL_LEDGER`, the
 * grant store every instance must share (PostgreSQL with a PostgreSQL ledger, Redis with BullMQ pools, else in
 * memory), the deterministic cache (in-process LRU or Redis), and the signing key. `close` releases what was opened.
 * @module
 */
import { CapabilityGuard, type GovernanceConfig } from "@egl/core"
import { PostgresGrantStore, PostgresLedger } from "@egl/ledger-postgres"
import { SqliteLedger } from "@egl/ledger-sqlite"
import { RedisCacheStore, RedisGrantStore } from "@egl/redis"
import { Effect } from "effect"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import type { Logger } from "pino"
import type { Config } from "./Config.ts"
import * as SigningKey from "./SigningKey.ts"

/** The governance configuration of a process, minus registry and policy, and how to release it. */
export interface Backends {
  readonly config: Omit<GovernanceConfig, "registry" | "policy">
  close(): Promise<void>
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
      return { storage: PostgresLedger.open(url.url) }
  }
}

/** Opens the backends of a configuration; rejects when one cannot be reached (fail closed at startup). */
export const open = async (config: Config, logger: Logger): Promise<Backends> => {
  const closers: Array<() => Promise<void>> = []
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined)
  }
  try {
    let grants: CapabilityGuard.GrantStore | undefined
    if (config.ledger.kind === "postgres") {
      const store = await Effect.runPromise(PostgresGrantStore.make(config.ledger.url))
      closers.push(() => Effect.runPromise(store.close))
      grants = store
    } else if (config.pools === "bullmq") {
      // Workers in other processes use the grants: they must share where used grants are remembered.
      const store = RedisGrantStore.make({ url: config.redisUrl, prefix: `${config.redisPrefix}:grant:` })
      closers.push(() => store.close())
      grants = store
    }
    let cache: GovernanceConfig["cache"]
    if (config.cache === "redis") {
      const store = RedisCacheStore.make({
        url: config.redisUrl,
        prefix: `${config.redisPrefix}:cache:`,
        logger: logger.child({ component: "cache" })
      })
      closers.push(() => store.close())
      cache = { store }
    }
    return {
      config: {
        keys: { privateKeyPem: SigningKey.loadOrCreate(config.dataDir) },
        ledger: ledgerOf(config),
        ...(grants !== undefined ? { grants } : {}),
        ...(cache !== undefined ? { cache } : {}),
        logger: logger.child({ component: "egl" })
      },
      close
    }
  } catch (error) {
    await close()
    throw error
  }
}
