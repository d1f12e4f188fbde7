/**
 * The capability catalog: what each capability costs in tier, which escalation reason unlocks it, and whether it has
 * side effects (which makes an execution ineligible for the deterministic cache).
 * @module
 */
import { Schema } from "effect"
import { EscalationReason } from "./ReasonCode.ts"
import { Tier } from "./ExecutionClass.ts"

/** A capability name: lowercase dotted words, e.g. `net.egress`. */
export const CapabilityName = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/, { expected: "a lowercase dotted capability name" })
  )
)
/** @see CapabilityName */
export type CapabilityName = typeof CapabilityName.Type

/** One catalog entry. */
export const CapabilitySpec = Schema.Struct({
  /** The minimum tier an execution holding this capability runs at. */
  tier: Tier,
  /** The escalation reason that unlocks the capability when it lifts the execution above its baseline tier. */
  reason: Schema.optionalKey(EscalationReason),
  /** True when exercising the capability changes the world (disables caching). */
  sideEffects: Schema.Boolean
})
/** @see CapabilitySpec */
export type CapabilitySpec = typeof CapabilitySpec.Type

/** Capability name → spec. */
export const CapabilityCatalog = Schema.Record(CapabilityName, CapabilitySpec)
/** @see CapabilityCatalog */
export type CapabilityCatalog = typeof CapabilityCatalog.Type

/** The default catalog; a registry's own entries are merged over it. */
export const defaultCatalog: CapabilityCatalog = {
  compute: { tier: 0, sideEffects: false },
  "fs.read": { tier: 1, reason: "FILE_ACCESS_REQUIRED", sideEffects: false },
  "fs.write": { tier: 1, reason: "FILE_ACCESS_REQUIRED", sideEffects: true },
  "net.egress": { tier: 2, reason: "NETWORK_REQUIRED", sideEffects: true },
  "ai.inference": { tier: 2, reason: "AI_PROVIDER_REQUIRED", sideEffects: false },
  "secret.read": { tier: 2, reason: "SECRET_REQUIRED", sideEffects: false },
  "admin.mutate": { tier: 3, reason: "PRIVILEGED_MUTATION", sideEffects: true },
  "system.exec": { tier: 3, reason: "PRIVILEGED_MUTATION", sideEffects: true }
}
