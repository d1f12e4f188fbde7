/**
 * A small governed Express app for the adapter's tests: the demo registry and policy of the reference app plus a
 * cacheable transform tool, a memory ledger whose appends can be made to fail, real sockets.
 */
import { createGovernance, Identity, Ledger, type Classifier, type PolicyEngine } from "@egl/core"
import { Effect } from "effect"
import express, { type Express } from "express"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as egl from "../src/index.ts"

/** A memory ledger storage whose appends fail while `failing` is set. */
export const switchableStorage = () => {
  const inner = Ledger.makeMemoryStorage()
  const state = { failing: false }
  const storage: Ledger.LedgerStorage = {
    ...inner,
    append: (drafts) =>
      state.failing ? Effect.fail(new Ledger.LedgerUnavailable({ detail: "disk on fire" })) : inner.append(drafts)
  }
  return { storage, state }
}

export const keys: Readonly<Record<string, Identity.Principal>> = {
  "key-alice-0123456789": { id: "alice", kind: "user", roles: ["ml-engineer"] },
  "key-bob-0123456789": { id: "bob", kind: "user", roles: ["ml-admin"] },
  "key-carol-0123456789": { id: "carol", kind: "user", roles: ["viewer"] }
}

/** `serving.deploy_model` (class ai, tier 2; tier 3 in prod with PRIVILEGED_MUTATION) and a cacheable transform. */
export const registry: Classifier.RegistryInput = {
  capabilities: { "model.deploy": { tier: 2, sideEffects: true } },
  tools: [
    {
      tool: "serving",
      version: "1.0.0",
      stage: "active",
      actions: { deploy_model: { class: "ai", capabilities: ["model.deploy"] } }
    },
    {
      tool: "text",
      version: "1.0.0",
      stage: "active",
      actions: { normalize: { class: "transform", capabilities: ["compute"] } }
    }
  ]
}

export const policy: PolicyEngine.PolicyInput = {
  version: "express-test-1",
  rules: [
    { id: "viewers-cannot-deploy", effect: "deny", match: { roles: ["viewer"], actions: ["serving.deploy_model"] } },
    {
      id: "prod-is-privileged",
      effect: "require",
      match: { environments: ["prod"], actions: ["serving.deploy_model"] },
      capabilities: ["admin.mutate"]
    },
    {
      id: "engineers-nonprod",
      effect: "allow",
      match: { roles: ["ml-engineer"], environments: ["dev", "staging"] },
      tier: 2,
      resources: { gpus: { max: 4, onExceed: "deny" } }
    },
    {
      id: "admins-prod",
      effect: "allow",
      match: { roles: ["ml-admin"], environments: ["prod"] },
      tier: 3,
      escalation: { approve: ["PRIVILEGED_MUTATION"] }
    },
    { id: "anyone-transforms", effect: "allow", match: { classes: ["transform"] }, tier: 0 }
  ]
}

/** Starts a governed app; `routes` adds the routes under test. */
export const serve = async (routes: (app: Express) => void) => {
  const { storage, state } = switchableStorage()
  const governance = await createGovernance({
    registry,
    policy,
    ledger: { storage: Effect.succeed(storage) },
    pools: { 3: { concurrency: 1, queueLimit: 16 } }
  })
  const app = express()
  app.use(express.json({ limit: "8kb" }))
  app.use(egl.express({ governance, identity: Identity.fromBearerToken(keys) }))
  routes(app)
  app.use(egl.errorHandler())
  const server: Server = createServer(app)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const records = async () => {
    const { size } = await governance.head()
    return (await governance.records(0, size)) as ReadonlyArray<Ledger.LedgerRecord>
  }
  return {
    url,
    governance,
    ledger: state,
    records,
    close: async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      await governance.close()
    }
  }
}

export const post = (url: string, key: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}),
      ...headers
    },
    body: JSON.stringify(body)
  })

/** A default-mapped admission body (`{ scope, input, requested }`). */
export const deployBody = (environment: string, gpus: number, escalate = false) => ({
  scope: { environment },
  input: { model: "m-1" },
  requested: {
    resources: { gpus },
    ...(escalate ? { escalation: { reason: "PRIVILEGED_MUTATION", justification: "release" } } : {})
  }
})
