/**
 * `@egl/core`: the Execution Governance Layer admission pipeline.
 * @module
 */
export * as Admission from "./Admission.ts"
export * as AdmissionRequest from "./AdmissionRequest.ts"
export * as Attestor from "./Attestor.ts"
export * as Canonical from "./Canonical.ts"
export * as CapabilityGuard from "./CapabilityGuard.ts"
export * as Classifier from "./Classifier.ts"
export * as DecisionLog from "./DecisionLog.ts"
export * as DeterminismEngine from "./DeterminismEngine.ts"
export * as FileLedger from "./FileLedger.ts"
export * as Governance from "./Governance.ts"
export * as IsolationRouter from "./IsolationRouter.ts"
export * as PolicyEngine from "./PolicyEngine.ts"
export * as Capability from "./Capability.ts"
export * as Envelope from "./Envelope.ts"
export * as ExecutionClass from "./ExecutionClass.ts"
export * as Ledger from "./Ledger.ts"
export * as ReasonCode from "./ReasonCode.ts"
export * as Sealer from "./Sealer.ts"
export { createGovernance } from "./Governance.ts"
export type { AdmitResult, Governance as GovernanceInstance, GovernanceConfig } from "./Governance.ts"
