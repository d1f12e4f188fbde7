/**
 * The example's tool: `serving.deploy_model` (class `ai`, tier floor 2), the demo policy and API keys of the reference
 * scenario (SPEC §11), and how a deploy request maps to an admission.
 *
 * The API keys are demo values: a real service loads its keys from a secret store.
 * @module
 */
import type { Classifier, Gate, Identity, PolicyEngine } from "@egl/core"

/** The qualified action the route admits. */
export const ACTION = "serving.deploy_model"

/** API key → principal (`Authorization: Bearer <key>`). */
export const apiKeys: Readonly<Record<string, Identity.Principal>> = {
  "egl-demo-alice": { id: "alice", kind: "user", roles: ["ml-engineer"] },
  "egl-demo-bob": { id: "bob", kind: "user", roles: ["ml-admin"] },
  "egl-demo-carol": { id: "carol", kind: "user", roles: ["viewer"] }
}

/** One tool whose `deploy_model` action allocates GPUs and deploys a model. */
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

/** Viewers may not deploy; engineers deploy to dev/staging with at most 4 GPUs; prod is tier 3, for admins. */
export const policy: PolicyEngine.PolicyInput = {
  version: "nest-basic-1",
  rules: [
    { id: "viewers-cannot-deploy", effect: "deny", match: { roles: ["viewer"], actions: [ACTION] } },
    {
      id: "prod-is-privileged",
      effect: "require",
      match: { environments: ["prod"], actions: [ACTION] },
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
    }
  ]
}

/** The body of `POST /serving/deploy_model`. */
export interface DeployRequest {
  readonly model: { readonly id: string; readonly version: string }
  readonly resources: { readonly gpus: number; readonly memoryGiB?: number; readonly replicas: number }
  readonly environment: "dev" | "staging" | "prod"
  readonly escalation?: { readonly reason: string; readonly justification: string }
}

/**
 * The route's options: the environment is the scope, the model the input, resources and escalation what is requested.
 * `@egl/core` validates the resulting admission request (a wrong environment or resource is `400 INVALID_REQUEST` with
 * its issues); a service that wants its body checked first gives the route a `body` Schema too (see `apps/serving-api`).
 */
export const deployModel: Gate.RouteOptions<DeployRequest> = {
  request: ({ body }) => ({
    scope: { environment: body.environment },
    input: { model: body.model },
    requested: {
      resources: body.resources,
      ...(body.escalation !== undefined ? { escalation: body.escalation } : {})
    }
  })
}
