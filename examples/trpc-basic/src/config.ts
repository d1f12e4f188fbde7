/**
 * The example's own governance configuration: a trimmed copy of the serving API's demo (SPEC §11) with two principals.
 *
 * The API keys are demo values printed in the README; a real deployment loads them from a secret store.
 */
import type { Classifier, Identity, PolicyEngine } from "@egl/core"

/** The qualified action the example governs. */
export const ACTION = "serving.deploy_model"

/** API key → principal (`Authorization: Bearer <key>`). */
export const apiKeys: Readonly<Record<string, Identity.Principal>> = {
  "egl-demo-alice": { id: "alice", kind: "user", roles: ["ml-engineer"] },
  "egl-demo-carol": { id: "carol", kind: "user", roles: ["viewer"] }
}

/** One tool, `serving`, whose `deploy_model` action is class `ai` (tier floor 2). */
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
      actions: { deploy_model: { class: "ai", capabilities: ["model.deploy", "gpu.allocate"] } }
    }
  ]
}

/** Viewers may not deploy; ML engineers may, outside prod, with at most 4 GPUs (replicas above 4 are clamped). */
export const policy: PolicyEngine.PolicyInput = {
  version: "trpc-basic-2026-11-01",
  rules: [
    { id: "viewers-cannot-deploy", effect: "deny", match: { roles: ["viewer"], actions: [ACTION] } },
    {
      id: "ml-engineer-nonprod",
      effect: "allow",
      match: { roles: ["ml-engineer"], environments: ["dev", "staging"] },
      tier: 2,
      resources: { gpus: { max: 4, onExceed: "deny" }, replicas: { max: 4, onExceed: "clamp" } }
    }
  ]
}
