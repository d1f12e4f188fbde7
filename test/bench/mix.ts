/**
 * The request mix of the admission benchmark and the "floor": the demo policy of the reference scenario (SPEC §11)
 * checked by a hand-written plain-JS function, with no validation, sealing or ledger.
 */
import type { AdmissionRequest } from "@egl/core"
import { deploy, principals } from "../../packages/core/test/fixtures/scenario.ts"

/** One request of the mix, in the terms every engine understands. */
export interface Case {
  readonly who: keyof typeof principals
  readonly environment: "dev" | "staging" | "prod"
  readonly resources: { readonly gpus: number; readonly memoryGiB: number; readonly replicas: number }
  readonly escalation?: boolean
  readonly dataClassification?: string
  /** The scenario's expected first reason code (admitted: "ALLOW"). */
  readonly expect:
    "ALLOW" | "RESOURCE_LIMIT_EXCEEDED" | "POLICY_DENY" | "ESCALATION_REASON_MISSING" | "ESCALATION_NOT_APPROVED"
}

const alice = (environment: "dev" | "staging", gpus: number, replicas: number, memoryGiB = 40): Case => ({
  who: "alice",
  environment,
  resources: { gpus, memoryGiB, replicas },
  expect: "ALLOW"
})

/** The denials of the reference scenario (SPEC §11). */
const denials: ReadonlyArray<Case> = [
  {
    who: "alice",
    environment: "dev",
    resources: { gpus: 8, memoryGiB: 40, replicas: 1 },
    expect: "RESOURCE_LIMIT_EXCEEDED"
  },
  { who: "carol", environment: "dev", resources: { gpus: 1, memoryGiB: 16, replicas: 1 }, expect: "POLICY_DENY" },
  {
    who: "alice",
    environment: "prod",
    resources: { gpus: 4, memoryGiB: 80, replicas: 2 },
    expect: "ESCALATION_REASON_MISSING"
  },
  {
    who: "alice",
    environment: "prod",
    resources: { gpus: 4, memoryGiB: 80, replicas: 2 },
    escalation: true,
    expect: "ESCALATION_NOT_APPROVED"
  },
  {
    who: "bob",
    environment: "prod",
    resources: { gpus: 32, memoryGiB: 80, replicas: 2 },
    escalation: true,
    expect: "RESOURCE_LIMIT_EXCEEDED"
  },
  {
    who: "alice",
    environment: "dev",
    resources: { gpus: 1, memoryGiB: 16, replicas: 1 },
    dataClassification: "restricted",
    expect: "POLICY_DENY"
  }
]

/** Admitted requests: mostly alice in dev/staging (some clamped), plus bob in staging and in prod with an escalation. */
const admits: ReadonlyArray<Case> = [
  alice("dev", 1, 1, 16),
  alice("dev", 2, 2),
  alice("dev", 4, 4, 80),
  alice("dev", 3, 1),
  alice("staging", 2, 6), // replicas clamped to 4
  alice("dev", 2, 2),
  alice("dev", 1, 2, 16),
  alice("staging", 4, 2, 80),
  alice("dev", 2, 3),
  alice("dev", 1, 1, 16),
  alice("staging", 1, 8, 16), // clamped
  alice("dev", 4, 1, 80),
  alice("dev", 2, 2),
  alice("dev", 3, 4),
  alice("staging", 2, 2),
  alice("dev", 1, 1, 16),
  alice("dev", 2, 5), // clamped
  alice("dev", 4, 2, 80),
  alice("staging", 3, 3),
  alice("dev", 2, 2),
  alice("dev", 1, 4, 16),
  alice("dev", 2, 1),
  alice("staging", 4, 4, 80),
  alice("dev", 2, 2),
  { who: "bob", environment: "staging", resources: { gpus: 8, memoryGiB: 80, replicas: 2 }, expect: "ALLOW" },
  {
    who: "bob",
    environment: "prod",
    resources: { gpus: 8, memoryGiB: 80, replicas: 2 },
    escalation: true,
    expect: "ALLOW"
  }
]

/** The mix: 26 admitted, 6 denied (19 %), denials spread through the sequence. */
export const mix: ReadonlyArray<Case> = (() => {
  const out: Array<Case> = []
  let d = 0
  admits.forEach((c, i) => {
    out.push(c)
    if (i % 4 === 3 && d < denials.length) out.push(denials[d++]!)
  })
  while (d < denials.length) out.push(denials[d++]!)
  return out
})()

/** The EGL admission request of a case (the shared fixture builder). */
export const toRequest = (c: Case): AdmissionRequest.AdmissionRequestInput =>
  deploy(c.who, c.environment, c.resources, {
    ...(c.escalation === true ? { escalation: true } : {}),
    ...(c.dataClassification !== undefined ? { dataClassification: c.dataClassification } : {})
  })

/** A decision of the floor. */
export interface FloorDecision {
  readonly ok: boolean
  readonly code: string
  readonly tier?: number
  readonly resources?: Readonly<Record<string, unknown>>
  readonly clamped?: boolean
}

const DENY_POLICY: FloorDecision = { ok: false, code: "POLICY_DENY" }
const DENY_LIMIT: FloorDecision = { ok: false, code: "RESOURCE_LIMIT_EXCEEDED" }
const DENY_NO_REASON: FloorDecision = { ok: false, code: "ESCALATION_REASON_MISSING" }
const DENY_NOT_APPROVED: FloorDecision = { ok: false, code: "ESCALATION_NOT_APPROVED" }

const num = (v: unknown): number => (typeof v === "number" ? v : 0)

/**
 * The demo policy as a plain function over the same request objects EGL receives: viewer denied, restricted data only
 * in prod, ml-engineer dev/staging ≤ 4 GPUs with replicas clamped to 4, prod needs an approved PRIVILEGED_MUTATION
 * escalation (ml-admin only, ≤ 16 GPUs, tier 3), ml-admin dev/staging ≤ 16 GPUs.
 */
export const floorCheck = (req: AdmissionRequest.AdmissionRequestInput): FloorDecision => {
  const roles = req.subject.roles ?? []
  const env = req.scope.environment
  const resources = req.requested?.resources ?? {}
  const gpus = num(resources.gpus)
  if (roles.includes("viewer")) return DENY_POLICY
  if (req.scope.dataClassification === "restricted" && (env === "dev" || env === "staging")) return DENY_POLICY
  if (env === "prod") {
    const esc = req.requested?.escalation
    if (esc === undefined) return DENY_NO_REASON
    if (!roles.includes("ml-admin") || esc.reason !== "PRIVILEGED_MUTATION") return DENY_NOT_APPROVED
    if (gpus > 16) return DENY_LIMIT
    return { ok: true, code: "ESCALATION_APPROVED", tier: 3, resources: { ...resources } }
  }
  if (env === "dev" || env === "staging") {
    if (roles.includes("ml-engineer")) {
      if (gpus > 4) return DENY_LIMIT
      const replicas = num(resources.replicas)
      if (replicas > 4)
        return { ok: true, code: "RESOURCE_CLAMPED", tier: 2, resources: { ...resources, replicas: 4 }, clamped: true }
      return { ok: true, code: "POLICY_ALLOW", tier: 2, resources: { ...resources } }
    }
    if (roles.includes("ml-admin")) {
      if (gpus > 16) return DENY_LIMIT
      return { ok: true, code: "POLICY_ALLOW", tier: 2, resources: { ...resources } }
    }
  }
  return DENY_POLICY
}
