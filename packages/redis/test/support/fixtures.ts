/**
 * Registry, policy and helpers shared by the Redis tests. Every test uses its own key prefix and deletes its keys.
 */
import { randomUUID } from "node:crypto"
import type { Classifier, GovernanceInstance, Ledger, PolicyEngine } from "@egl/core"
import { Redis } from "ioredis"

/** Redis the tests use (the machine's; `REDIS_URL` overrides). */
export const REDIS_URL = process.env["REDIS_URL"] ?? "redis://127.0.0.1:6379"

/** One action per tier, plus `jobs.brief` whose grants live one second. */
export const registry: Classifier.RegistryInput = {
  tools: [
    {
      tool: "jobs",
      version: "1.0.0",
      stage: "active",
      actions: {
        transform: { class: "transform" },
        file: { class: "file" },
        network: { class: "network" },
        privileged: { class: "privileged" },
        brief: { class: "network" }
      }
    }
  ]
}

/** Agents may run everything up to tier 3; `jobs.brief` grants expire after one second. */
export const policy: PolicyEngine.PolicyInput = {
  version: "redis-tests-1",
  rules: [
    { id: "viewers", effect: "deny", match: { roles: ["viewer"] } },
    { id: "brief", effect: "allow", match: { actions: ["jobs.brief"] }, tier: 3, grant: { ttlSeconds: 1 } },
    { id: "agents", effect: "allow", match: { principalKinds: ["agent"] }, tier: 3 }
  ]
}

/** An admission request for `jobs.<action>`. */
export const request = (action: string, input: unknown, roles: ReadonlyArray<string> = []) => ({
  tool: "jobs",
  action,
  subject: { id: "planner", kind: "agent" as const, roles: [...roles] },
  scope: { environment: "dev" as const },
  input
})

/** A fresh key prefix for one test. */
export const uniquePrefix = (what: string): string => `egl-test-${what}-${randomUUID().slice(0, 8)}`

/** Deletes every key under `pattern` (e.g. `prefix*`). */
export const deleteKeys = async (pattern: string): Promise<number> => {
  const redis = new Redis(REDIS_URL)
  try {
    let deleted = 0
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      cursor = next
      if (keys.length > 0) deleted += await redis.del(...keys)
    } while (cursor !== "0")
    return deleted
  } finally {
    redis.disconnect()
  }
}

/** The ledger records about an envelope, with incident types and execution phases spelled out. */
export const history = async (egl: GovernanceInstance, envelopeId: string) => {
  const { size } = await egl.head()
  const records = (await egl.records(0, size)) as ReadonlyArray<Ledger.LedgerRecord>
  return records
    .filter((r) => r.ref === envelopeId)
    .map((r) => {
      const body = JSON.parse(r.body) as Record<string, unknown>
      return {
        kind: r.kind,
        index: r.index,
        hash: r.hash,
        type: body["type"] as string | undefined,
        phase: body["phase"] as string | undefined,
        worker: body["worker"] as string | undefined,
        detail: body["detail"] as string | undefined
      }
    })
}

/** Polls `check` every 20 ms until it is true, or fails after `ms`. */
export const eventually = async (check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> => {
  const until = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
