/**
 * The demo configuration of the reference app (SPEC §11): three principals with their API keys, the `serving` tool
 * whose `deploy_model` action is class `ai` (tier floor 2), and the demo policy.
 *
 * The API keys are demo values, published in the README: a real deployment loads its keys from a secret store and
 * passes them to `Identity.fromBearerToken` the same way.
 * @module
 */
import type { Classifier, Identity, PolicyEngine } from "@egl/core"

/** API key → principal of the demo (`Authorization: Bearer <key>`). */
export const apiKeys: Readonly<Record<string, Identity.Principal>> = {
  "egl-demo-alice": { id: "alice", kind: "user", roles: ["ml-engineer"] },
  "egl-demo-bob": { id: "bob", kind: "user", roles: ["ml-admin"] },
  "egl-demo-carol": { id: "carol", kind: "user", roles: ["viewer"] }
}

/** One tool, `serving`, whose `deploy_model` action allocates GPUs and deploys a model. */
export const registry: Classifier.RegistryInput = {
  capabilities: {
    "model.deploy": { tier: 2, sideEffects: true },
    "gpu.allocate": { tier: 2, sideEffects: true }
  },
  tools: [
    {
      tool: "serving",
      version: "1.0.0",
      stage: "active",
      actions: {
        deploy_model: {
          class: "ai",
          capabilities: ["model.deploy", "gpu.allocate"],
          description: "Deploy a model version"
        }
      }
    }
  ]
}

/** The demo policy. */
export const policy: PolicyEngine.PolicyInput = {
  version: "demo-2026-11-01",
  description: "Reference scenario of the serving API",
  rules: [
    { id: "viewers-cannot-deploy", effect: "deny", match: { roles: ["viewer"], actions: ["serving.deploy_model"] } },
    {
      id: "restricted-data-prod-only",
      effect: "deny",
      match: { dataClassifications: ["restricted"], environments: ["dev", "staging"] }
    },
    {
      id: "prod-is-privileged",
      description: "A deployment to prod mutates production: tier 3",
      effect: "require",
      match: { environments: ["prod"], actions: ["serving.deploy_model"] },
      capabilities: ["admin.mutate"]
    },
    {
      id: "ml-engineer-nonprod",
      effect: "allow",
      match: { roles: ["ml-engineer"], environments: ["dev", "staging"] },
      tier: 2,
      resources: { gpus: { max: 4, onExceed: "deny" }, replicas: { max: 4, onExceed: "clamp" } }
    },
    {
      id: "ml-admin-prod",
      effect: "allow",
      match: { roles: ["ml-admin"], environments: ["prod"] },
      tier: 3,
      escalation: { approve: ["PRIVILEGED_MUTATION"] },
      resources: { gpus: { max: 16, onExceed: "deny" } },
      grant: { ttlSeconds: 300 }
    },
    {
      id: "ml-admin-nonprod",
      effect: "allow",
      match: { roles: ["ml-admin"], environments: ["dev", "staging"] },
      tier: 2,
      resources: { gpus: { max: 16, onExceed: "deny" } }
    }
  ]
}
