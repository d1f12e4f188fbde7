/**
 * The capability guard (SPEC §4, seed 002 §2.3): least privilege and the escalation contract.
 *
 * - No implicit escalation: the granted tier is the action's baseline unless an escalation is approved, and never
 *   above the tier ceiling of the rule that approves it.
 * - Reason-bound: lifting a request above its baseline needs an escalation whose reason code is the catalog reason of a
 *   missing capability (one whose tier is above the baseline) — `ESCALATION_REASON_MISSING` otherwise.
 * - Policy-gated: an allow rule matching the actor's context must approve that reason (`ESCALATION_NOT_APPROVED`).
 * - One hop: at most one tier above the baseline unless the class permits a direct jump (`ESCALATION_HOP_LIMIT`).
 * - Single use with expiry: every grant is consumed at most once ({@link CapabilityGuard.consume}) and never after it
 *   expires (`GRANT_REUSED`, `GRANT_EXPIRED`).
 * - Audited: the decision (with its approved escalation and policy snapshot id) is sealed into the ledger by the
 *   admission pipeline before anyone sees it.
 * @module
 */
import { Context, Effect, Layer, Schema } from "effect"
import { Classifier, type Classification } from "./Classifier.ts"
import { decision } from "./internal/decision.ts"
import type { ApprovedEscalation, EscalationRequest, Resources } from "./Envelope.ts"
import { maxTier, type Tier } from "./ExecutionClass.ts"
import type { AllowRule, PolicyMatch } from "./PolicyEngine.ts"
import type { NoticeCode } from "./ReasonCode.ts"

/** Denied by policy (`POLICY_DENY`): a deny rule matched, or no allow rule can carry the request. */
export class PolicyDenied extends Schema.TaggedError<PolicyDenied>()("PolicyDenied", {
  detail: Schema.String,
  matchedRules: Schema.Array(Schema.String)
}) {
  /** Reason code of this denial. */
  readonly code = "POLICY_DENY" as const
  override get message(): string {
    return this.detail
  }
}

/** The escalation contract was not met. */
export class EscalationDenied extends Schema.TaggedError<EscalationDenied>()("EscalationDenied", {
  code: Schema.Literals(["ESCALATION_REASON_MISSING", "ESCALATION_NOT_APPROVED", "ESCALATION_HOP_LIMIT"]),
  detail: Schema.String,
  matchedRules: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return this.detail
  }
}

/** A requested resource exceeds a deny cap (`RESOURCE_LIMIT_EXCEEDED`). */
export class ResourceLimitExceeded extends Schema.TaggedError<ResourceLimitExceeded>()("ResourceLimitExceeded", {
  resource: Schema.String,
  requested: Schema.Number,
  limit: Schema.Number,
  rule: Schema.String
}) {
  /** Reason code of this denial. */
  readonly code = "RESOURCE_LIMIT_EXCEEDED" as const
  override get message(): string {
    return `${this.resource} = ${this.requested} exceeds the limit ${this.limit} of rule "${this.rule}"`
  }
}

/** A grant cannot be used: already used, or expired. */
export class GrantRejected extends Schema.TaggedError<GrantRejected>()("GrantRejected", {
  code: Schema.Literals(["GRANT_EXPIRED", "GRANT_REUSED"]),
  envelopeId: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** The grant store could not answer; the grant is not used (fail closed). */
export class GrantStoreUnavailable extends Schema.TaggedError<GrantStoreUnavailable>()("GrantStoreUnavailable", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** The guard's answer for an admissible request. */
export interface Authorization {
  readonly tier: Tier
  readonly capabilities: ReadonlyArray<string>
  readonly resources: Resources
  readonly notices: ReadonlyArray<NoticeCode>
  readonly matchedRules: ReadonlyArray<string>
  readonly ruleId: string
  readonly rationale: string
  readonly escalation?: ApprovedEscalation
  readonly ttlSeconds: number
}

/** What the guard decides on. */
export interface AuthorizeInput {
  readonly classification: Classification
  readonly match: PolicyMatch
  readonly requestedTier?: Tier | undefined
  readonly resources: Resources
  readonly escalation?: EscalationRequest | undefined
}

/**
 * Where consumed grants are remembered. `consume` must be atomic: of concurrent calls for one grant, exactly one
 * observes `"consumed"`. The in-memory store serves one process; shared stores serve several.
 */
export interface GrantStore {
  consume(
    grantId: string,
    expiresAtMs: number,
    nowMs: number
  ): Effect.Effect<"consumed" | "reused" | "expired", GrantStoreUnavailable>
}

/** An in-process grant store; consumed ids are forgotten once their grant has expired (a late use is expired anyway). */
export const memoryGrantStore = (): GrantStore => {
  const used = new Map<string, number>()
  let sweepAt = 0
  return {
    consume: (id, expiresAtMs, nowMs) =>
      Effect.sync(() => {
        if (nowMs >= sweepAt) {
          for (const [k, exp] of used) if (exp <= nowMs) used.delete(k)
          sweepAt = nowMs + 10_000
        }
        if (nowMs >= expiresAtMs) return "expired"
        if (used.has(id)) return "reused"
        used.set(id, expiresAtMs)
        return "consumed"
      })
  }
}

/** The capability guard service. */
export class CapabilityGuard extends Context.Service<
  CapabilityGuard,
  {
    /** Decides tier, capabilities, resources and escalation for a request the policy has matched. */
    authorize(
      input: AuthorizeInput
    ): Effect.Effect<Authorization, PolicyDenied | EscalationDenied | ResourceLimitExceeded>
    /** Uses a grant once: fails with `GRANT_EXPIRED` after its expiry, `GRANT_REUSED` on any second use. */
    consume(
      grant: { readonly envelopeId: string; readonly expiresAt: string },
      nowMs: number
    ): Effect.Effect<void, GrantRejected | GrantStoreUnavailable>
  }
>()("@egl/core/CapabilityGuard") {
  /** A guard over the classifier's catalog, remembering grants in `store` (default: in memory). */
  static readonly layer = (store: GrantStore = memoryGrantStore()) => Layer.effect(CapabilityGuard, make(store))
}

/** Builds the guard. */
export const make = (store: GrantStore): Effect.Effect<CapabilityGuard["Service"], never, Classifier> =>
  Effect.gen(function* () {
    const classifier = yield* Classifier
    const tierOf = (c: string): Tier => classifier.capability(c)?.tier ?? 3
    const reasonOf = (c: string): string | undefined => classifier.capability(c)?.reason

    const authorize = (
      input: AuthorizeInput
    ): Effect.Effect<Authorization, PolicyDenied | EscalationDenied | ResourceLimitExceeded> => {
      const { classification: cls, match } = input
      if (match.denyRules.length > 0) {
        return Effect.fail(
          decision(
            () =>
              new PolicyDenied({ detail: `denied by rule "${match.denyRules[0]}"`, matchedRules: [...match.denyRules] })
          )
        )
      }
      let capabilities = cls.capabilities
      let requiredTier = cls.capabilityTier
      if (match.required.length > 0) {
        const merged = new Set(capabilities)
        for (const c of match.required) {
          merged.add(c)
          requiredTier = maxTier(requiredTier, tierOf(c))
        }
        capabilities = [...merged].sort()
      }
      if (input.requestedTier !== undefined) requiredTier = maxTier(requiredTier, input.requestedTier)
      const baseline = cls.baselineTier
      const escalating = requiredTier > baseline
      const allowIds = match.allows.map((a) => a.id)

      let missing: ReadonlyArray<string> = []
      if (escalating) {
        missing = capabilities.filter((c) => tierOf(c) > baseline)
        const reasons = new Set<string>()
        if (missing.length > 0) for (const c of missing) reasons.add(reasonOf(c) ?? "")
        else {
          // An explicitly requested tier names no capability: any reason that unlocks a capability in the range counts.
          for (const spec of Object.values(classifier.catalog)) {
            if (spec.tier > baseline && spec.tier <= requiredTier && spec.reason !== undefined) reasons.add(spec.reason)
          }
        }
        reasons.delete("")
        const needs = [...reasons].sort().join(", ")
        if (input.escalation === undefined) {
          return Effect.fail(
            decision(
              () =>
                new EscalationDenied({
                  code: "ESCALATION_REASON_MISSING",
                  detail: `tier ${requiredTier} is above the baseline tier ${baseline} of ${cls.tool}.${cls.action}: an escalation with reason ${needs || "(none defined)"} is required`,
                  matchedRules: [...match.requireRules]
                })
            )
          )
        }
        const asked = input.escalation.reason
        if (!reasons.has(asked)) {
          return Effect.fail(
            decision(
              () =>
                new EscalationDenied({
                  code: "ESCALATION_REASON_MISSING",
                  detail: `escalation reason ${asked} names no missing capability; expected ${needs || "(none defined)"}`,
                  matchedRules: [...match.requireRules]
                })
            )
          )
        }
        if (requiredTier - baseline > 1 && !cls.directJump) {
          return Effect.fail(
            decision(
              () =>
                new EscalationDenied({
                  code: "ESCALATION_HOP_LIMIT",
                  detail: `escalation from tier ${baseline} to ${requiredTier} is more than one hop, which class "${cls.executionClass}" does not permit`,
                  matchedRules: [...match.requireRules]
                })
            )
          )
        }
      }

      const covers = (rule: AllowRule) =>
        rule.capabilities === undefined || capabilities.every((c) => rule.capabilities!.has(c))
      let rule: AllowRule | undefined
      for (const candidate of match.allows) {
        if ((candidate.tier ?? baseline) < requiredTier) continue
        if (escalating && !candidate.approves.has(input.escalation!.reason)) continue
        if (!covers(candidate)) continue
        rule = candidate
        break
      }
      if (rule === undefined) {
        if (escalating) {
          return Effect.fail(
            decision(
              () =>
                new EscalationDenied({
                  code: "ESCALATION_NOT_APPROVED",
                  detail: `no rule approves escalation ${input.escalation!.reason} to tier ${requiredTier} for this principal and scope`,
                  matchedRules: [...match.requireRules, ...allowIds]
                })
            )
          )
        }
        return Effect.fail(
          decision(
            () =>
              new PolicyDenied({
                detail:
                  match.allows.length === 0
                    ? `no allow rule matches ${cls.tool}.${cls.action} for this principal and scope`
                    : `no matching allow rule grants tier ${requiredTier} with capabilities ${capabilities.join(", ") || "(none)"}`,
                matchedRules: allowIds
              })
          )
        )
      }

      let resources: Resources = input.resources
      let clamped: Array<string> | undefined
      if (rule.resources !== undefined) {
        for (const [name, cap] of Object.entries(rule.resources)) {
          const v = Object.hasOwn(input.resources, name) ? input.resources[name] : undefined
          if (typeof v !== "number" || v <= cap.max) continue
          if (cap.onExceed === "deny") {
            return Effect.fail(
              decision(() => new ResourceLimitExceeded({ resource: name, requested: v, limit: cap.max, rule: rule.id }))
            )
          }
          ;(clamped ??= []).push(name)
        }
        if (clamped !== undefined) {
          const out: Record<string, number | string | boolean> = { ...input.resources }
          for (const name of clamped) out[name] = rule.resources[name]!.max
          resources = out
        }
      }

      const notices: Array<NoticeCode> = ["POLICY_ALLOW"]
      if (escalating) notices.push("ESCALATION_APPROVED")
      if (clamped !== undefined) notices.push("RESOURCE_CLAMPED")
      const matchedRules = match.requireRules.length > 0 ? [...match.requireRules, rule.id] : [rule.id]
      const escalation: ApprovedEscalation | undefined = escalating
        ? {
            reason: input.escalation!.reason,
            justification: input.escalation!.justification,
            fromTier: baseline,
            toTier: requiredTier,
            capabilities: missing,
            approvedBy: rule.id
          }
        : undefined
      const rationale =
        `allowed by rule "${rule.id}" at tier ${requiredTier}` +
        (escalating ? ` with escalation ${input.escalation!.reason} from tier ${baseline}` : "") +
        (clamped !== undefined ? `; clamped ${clamped.join(", ")}` : "")
      const ttlSeconds =
        rule.ttlSeconds ?? (escalating ? Math.min(60, match.defaultTtlSeconds) : match.defaultTtlSeconds)
      return Effect.succeed({
        tier: requiredTier,
        capabilities,
        resources,
        notices,
        matchedRules,
        ruleId: rule.id,
        rationale,
        ttlSeconds,
        ...(escalation !== undefined ? { escalation } : {})
      })
    }

    const consume = (grant: { readonly envelopeId: string; readonly expiresAt: string }, nowMs: number) =>
      Effect.flatMap(store.consume(grant.envelopeId, Date.parse(grant.expiresAt), nowMs), (outcome) =>
        outcome === "consumed"
          ? Effect.void
          : Effect.fail(
              decision(
                () =>
                  new GrantRejected({
                    code: outcome === "expired" ? "GRANT_EXPIRED" : "GRANT_REUSED",
                    envelopeId: grant.envelopeId,
                    detail:
                      outcome === "expired"
                        ? `the grant of ${grant.envelopeId} expired at ${grant.expiresAt}`
                        : `the grant of ${grant.envelopeId} was already used`
                  })
              )
            )
      )

    return CapabilityGuard.of({ authorize, consume })
  })
