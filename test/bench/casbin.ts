/**
 * The demo policy in casbin: RBAC (user → role) plus an ABAC matcher over the environment, the GPU count against the
 * rule's cap, the escalation reason and the data classification. Allow rules are policy lines; "viewer may not deploy"
 * is the absence of an allow line and "restricted data only in prod" is a clause of the matcher.
 */
import { newEnforcer, newModelFromString, StringAdapter, type Enforcer } from "casbin"
import type { Case } from "./mix.ts"

const MODEL = `
[request_definition]
r = sub, env, act, gpus, esc, dc

[policy_definition]
p = sub, env, act, maxgpus, esc

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && r.env == p.env && r.act == p.act && r.gpus <= p.maxgpus && (p.esc == "-" || r.esc == p.esc) && !(r.dc == "restricted" && r.env != "prod")
`

const POLICY = `
p, ml-engineer, dev, serving.deploy_model, 4, -
p, ml-engineer, staging, serving.deploy_model, 4, -
p, ml-admin, dev, serving.deploy_model, 16, -
p, ml-admin, staging, serving.deploy_model, 16, -
p, ml-admin, prod, serving.deploy_model, 16, PRIVILEGED_MUTATION
g, alice, ml-engineer
g, bob, ml-admin
g, carol, viewer
`

/** A casbin enforcer of the demo policy. */
export const makeCasbin = async (): Promise<Enforcer> => {
  // Policy fields are strings; `r.gpus <= p.maxgpus` compares a number with a numeric string, which the matcher's
  // JavaScript semantics evaluate numerically (8 <= "16" is true). The parity check below confirms it.
  return newEnforcer(newModelFromString(MODEL), new StringAdapter(POLICY))
}

/** The request values of a case, in the order of `request_definition`. */
export type CasbinArgs = readonly [string, string, string, number, string, string]

export const casbinArgs = (c: Case): CasbinArgs => [
  c.who,
  c.environment,
  "serving.deploy_model",
  c.resources.gpus,
  c.escalation === true ? "PRIVILEGED_MUTATION" : "",
  c.dataClassification ?? ""
]
