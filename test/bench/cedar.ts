/**
 * The demo policy in Cedar, evaluated by `@cedar-policy/cedar-wasm` with a preparsed policy set
 * (`preparsePolicySet` once, then `statefulIsAuthorized` per request). Principals are `User` entities whose parents are
 * `Role` entities (sent with each request, as EGL's subject carries its roles); the environment, GPU count, escalation reason and data classification travel in the context.
 */
import * as cedar from "@cedar-policy/cedar-wasm/nodejs"
import type { Case } from "./mix.ts"

const POLICIES = `
@id("ml-engineer-nonprod")
permit (principal in Role::"ml-engineer", action == Action::"serving.deploy_model", resource)
when { (context.environment == "dev" || context.environment == "staging") && context.gpus <= 4 };

@id("ml-admin-nonprod")
permit (principal in Role::"ml-admin", action == Action::"serving.deploy_model", resource)
when { (context.environment == "dev" || context.environment == "staging") && context.gpus <= 16 };

@id("ml-admin-prod")
permit (principal in Role::"ml-admin", action == Action::"serving.deploy_model", resource)
when { context.environment == "prod" && context.gpus <= 16 && context.escalation == "PRIVILEGED_MUTATION" };

@id("viewers-cannot-deploy")
forbid (principal in Role::"viewer", action == Action::"serving.deploy_model", resource);

@id("restricted-data-prod-only")
forbid (principal, action, resource)
when { context.dataClassification == "restricted" && context.environment != "prod" };
`

const POLICY_SET_ID = "egl-demo"

/** Role of each demo principal (as in the scenario's principals). */
const ROLE = { alice: "ml-engineer", bob: "ml-admin", carol: "viewer" } as const

/**
 * The entities of a request: the principal with its role as parent, which is what EGL receives too (the subject carries
 * its roles). Role entities need not be listed for `principal in Role::"…"` to hold.
 */
const entitiesOf = (who: keyof typeof ROLE): cedar.Entities => [
  { uid: { type: "User", id: who }, attrs: {}, parents: [{ type: "Role", id: ROLE[who] }] }
]

/** Parses the policy set once into the wasm module's cache; throws if it does not parse. */
export const prepareCedar = (): string => {
  const answer = cedar.preparsePolicySet(POLICY_SET_ID, { staticPolicies: POLICIES })
  if (answer.type !== "success") throw new Error(`cedar policy set does not parse: ${JSON.stringify(answer.errors)}`)
  return cedar.getCedarVersion()
}

/** The authorization call of a case (built once; the call itself is what is timed). */
export const cedarCall = (c: Case): cedar.StatefulAuthorizationCall => ({
  principal: { type: "User", id: c.who },
  action: { type: "Action", id: "serving.deploy_model" },
  resource: { type: "Tool", id: "serving" },
  context: {
    environment: c.environment,
    gpus: c.resources.gpus,
    escalation: c.escalation === true ? "PRIVILEGED_MUTATION" : "",
    dataClassification: c.dataClassification ?? ""
  },
  preparsedPolicySetId: POLICY_SET_ID,
  entities: entitiesOf(c.who)
})

/** True when Cedar allows; throws on an evaluation failure (a broken benchmark, not a denial). */
export const cedarAllows = (call: cedar.StatefulAuthorizationCall): boolean => {
  const answer = cedar.statefulIsAuthorized(call)
  if (answer.type !== "success") throw new Error(`cedar evaluation failed: ${JSON.stringify(answer.errors)}`)
  return answer.response.decision === "allow"
}
