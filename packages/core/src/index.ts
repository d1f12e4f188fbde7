/**
 * `@egl/core`: the Execution Governance Layer admission pipeline.
 * @module
 */
export * as Canonical from "./Canonical.ts"
export * as Capability from "./Capability.ts"
export * as Envelope from "./Envelope.ts"
export * as ExecutionClass from "./ExecutionClass.ts"
export * as Ledger from "./Ledger.ts"
export * as ReasonCode from "./ReasonCode.ts"
export * as Sealer from "./Sealer.ts"
