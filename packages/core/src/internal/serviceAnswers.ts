/**
 * Checks on what the pipeline's services answer. A service that answers garbage (or over-grants) must end the
 * admission in a denial, never in an admission, so each answer is checked before it is used; the guard's answer is
 * checked against the envelope invariants of SPEC §3 themselves.
 */
import type { Classification } from "../Classifier.ts"
import type { Authorization } from "../CapabilityGuard.ts"
import type { Resources } from "../Envelope.ts"
import type { Tier } from "../ExecutionClass.ts"
import type { PolicyMatch } from "../PolicyEngine.ts"

const TIERS: ReadonlySet<unknown> = new Set([0, 1, 2, 3])
/** A capability tier. */
export const isTier = (t: unknown): t is Tier => TIERS.has(t)
const isStringArray = (xs: unknown): xs is ReadonlyArray<string> =>
  Array.isArray(xs) && xs.every((x) => typeof x === "string")
/** Runtime verdicts an attestation may carry. */
export const VERDICTS: ReadonlySet<unknown> = new Set(["exact", "drift-allowed", "blocked", "unattested"])

/** A well-formed classification. */
export const isClassification = (c: unknown): c is Classification => {
  const x = c as Classification | null
  return (
    typeof x === "object" &&
    x !== null &&
    typeof x.tool === "string" &&
    typeof x.action === "string" &&
    typeof x.toolVersion === "string" &&
    typeof x.executionClass === "string" &&
    isTier(x.baselineTier) &&
    isTier(x.capabilityTier) &&
    x.capabilityTier >= x.baselineTier &&
    typeof x.cacheable === "boolean" &&
    isStringArray(x.capabilities)
  )
}

/** A well-formed policy match for the policy snapshot in force. */
export const isPolicyMatch = (m: unknown, snapshotId: string): m is PolicyMatch => {
  const x = m as PolicyMatch | null
  return (
    typeof x === "object" &&
    x !== null &&
    x.snapshotId === snapshotId &&
    isStringArray(x.denyRules) &&
    isStringArray(x.required) &&
    isStringArray(x.requireRules) &&
    Array.isArray(x.allows) &&
    typeof x.defaultTtlSeconds === "number" &&
    x.defaultTtlSeconds > 0
  )
}

/**
 * The invariants of SPEC §3 (1–3) checked on the guard's answer: the tier is within the approving rule's ceiling and
 * above the baseline only through an approved escalation; capabilities ⊆ required ∪ escalation; resources never above
 * what was requested.
 */
export const violation = (
  auth: Authorization,
  cls: Classification,
  match: PolicyMatch,
  requested: Resources,
  escalationReason: string | undefined
): string | undefined => {
  if (typeof auth !== "object" || auth === null || !isTier(auth.tier) || !isStringArray(auth.capabilities)) {
    return "malformed authorization"
  }
  const rule = match.allows.find((r) => r.id === auth.ruleId)
  if (rule === undefined) return `authorization names rule "${String(auth.ruleId)}" which did not match`
  if (auth.tier < cls.baselineTier) return "granted tier below the baseline"
  if (auth.tier > (rule.tier ?? cls.baselineTier)) return "granted tier above the approving rule's ceiling"
  if (auth.tier > cls.baselineTier) {
    const e = auth.escalation
    if (e === undefined || e.reason !== escalationReason || e.approvedBy !== rule.id || !rule.approves.has(e.reason)) {
      return "tier above the baseline without an approved escalation"
    }
  }
  const escalated = auth.escalation?.capabilities
  for (const c of auth.capabilities) {
    if (!cls.capabilities.includes(c) && !match.required.includes(c) && !(escalated?.includes(c) ?? false)) {
      return `capability "${c}" was neither requested nor escalated`
    }
  }
  if (typeof auth.resources !== "object" || auth.resources === null) return "malformed resources"
  // Unclamped grants are the requested object itself: nothing to compare.
  if (auth.resources !== requested)
    for (const [k, v] of Object.entries(auth.resources)) {
      const asked = Object.hasOwn(requested, k) ? requested[k] : undefined
      if (asked === undefined) return `resource "${k}" was not requested`
      if (typeof v === "number" ? typeof asked !== "number" || v > asked : v !== asked)
        return `resource "${k}" exceeds the request`
    }
  if (typeof auth.ttlSeconds !== "number" || !(auth.ttlSeconds > 0)) return "malformed grant lifetime"
  return undefined
}
