/**
 * Machine-readable reason codes carried by every decision (SPEC §4).
 *
 * Denial codes end an admission; notice codes annotate an admitted decision (a clamp, an approved escalation, drift
 * inside its budget, a cache hit, an incident-mode fallback).
 * @module
 */
import { Schema } from "effect"

/** Codes that deny an admission. */
export const DenialCodes = [
  "CLASS_UNKNOWN",
  "CAPABILITY_UNKNOWN",
  "ESCALATION_REASON_MISSING",
  "ESCALATION_NOT_APPROVED",
  "ESCALATION_HOP_LIMIT",
  "GRANT_EXPIRED",
  "GRANT_REUSED",
  "RESOURCE_LIMIT_EXCEEDED",
  "POLICY_DENY",
  "POLICY_UNAVAILABLE",
  "RUNTIME_DRIFT_BLOCKED",
  "RUNTIME_UNATTESTED",
  "RUNTIME_QUARANTINED",
  "TOOL_STAGE_BLOCKED",
  "POOL_UNAVAILABLE",
  "LEDGER_UNAVAILABLE",
  "SEALER_UNAVAILABLE",
  "GRANT_STORE_UNAVAILABLE",
  "ENVELOPE_INVALID",
  "INVALID_REQUEST"
] as const

/** Codes that annotate an admitted decision without denying it. */
export const NoticeCodes = [
  "POLICY_ALLOW",
  "ESCALATION_APPROVED",
  "RESOURCE_CLAMPED",
  "RUNTIME_DRIFT_ALLOWED",
  "CACHE_HIT",
  "CACHE_POISONED",
  "CROSS_TIER_FALLBACK"
] as const

/**
 * Codes of refusals at the boundary, before any admission: they never appear in an envelope or the ledger, only in
 * problem responses (`401`, `503` from the identity resolver, `413`).
 */
export const BoundaryCodes = ["UNAUTHENTICATED", "IDENTITY_UNAVAILABLE", "REQUEST_TOO_LARGE"] as const
/** @see BoundaryCodes */
export type BoundaryCode = (typeof BoundaryCodes)[number]

/** A code that denies an admission. */
export const DenialCode = Schema.Literals(DenialCodes)
/** @see DenialCode */
export type DenialCode = typeof DenialCode.Type

/** A code that annotates an admitted decision. */
export const NoticeCode = Schema.Literals(NoticeCodes)
/** @see NoticeCode */
export type NoticeCode = typeof NoticeCode.Type

/** Any reason code. */
export const ReasonCode = Schema.Literals([...DenialCodes, ...NoticeCodes])
/** @see ReasonCode */
export type ReasonCode = typeof ReasonCode.Type

const denial: ReadonlySet<string> = new Set(DenialCodes)

/** True when `code` denies an admission. */
export const isDenial = (code: ReasonCode): code is DenialCode => denial.has(code)

/**
 * Escalation reason codes: an escalation must name the reason that unlocks the capability it is missing
 * (`NETWORK_REQUIRED`, `SECRET_REQUIRED`, `PRIVILEGED_MUTATION`, …). Deployments may define their own reasons in
 * their capability catalog; a reason is an UPPER_SNAKE_CASE word.
 */
export const EscalationReason = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[A-Z][A-Z0-9_]{1,63}$/, { expected: "an UPPER_SNAKE_CASE escalation reason code" }))
)
/** @see EscalationReason */
export type EscalationReason = typeof EscalationReason.Type

/** The escalation reasons the default capability catalog uses. */
export const WellKnownEscalationReasons = [
  "FILE_ACCESS_REQUIRED",
  "NETWORK_REQUIRED",
  "AI_PROVIDER_REQUIRED",
  "SECRET_REQUIRED",
  "PRIVILEGED_MUTATION"
] as const
