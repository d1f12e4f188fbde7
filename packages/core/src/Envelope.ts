/**
 * The execution envelope (SPEC §3): one normalized admission object per request, sealed once decided.
 *
 * A sealed envelope is content-addressed: `decision.snapshotId` is the SHA-256 of the RFC 8785 canonical form of the
 * envelope without `decision.snapshotId` and without `ledger` (the position of its record, known only after the
 * append). {@link verifySeal} recomputes it, so any mutation of a sealed envelope is detectable, and the digest is
 * stable under any re-serialization of the same JSON value.
 * @module
 */
import { Schema } from "effect"
import { CapabilityName } from "./Capability.ts"
import { ExecutionClass, Tier } from "./ExecutionClass.ts"
import { EscalationReason, ReasonCode } from "./ReasonCode.ts"
import * as Canonical from "./Canonical.ts"
import { canonicalEnvelope } from "./internal/envelopeJcs.ts"
import { sha256Hex } from "./internal/hash.ts"

/** Envelope schema version. */
export const VERSION = 1 as const

/** Lifecycle states of an envelope. */
export const LifecycleState = Schema.Literals([
  "received",
  "classified",
  "evaluated",
  "admitted",
  "denied",
  "dispatched",
  "completed",
  "failed",
  "expired"
])
/** @see LifecycleState */
export type LifecycleState = typeof LifecycleState.Type

/** Allowed lifecycle transitions: received → classified → evaluated → admitted | denied → dispatched → completed | failed | expired. */
export const transitions: Readonly<Record<LifecycleState, ReadonlyArray<LifecycleState>>> = {
  received: ["classified", "denied"],
  classified: ["evaluated", "denied"],
  evaluated: ["admitted", "denied"],
  admitted: ["dispatched", "expired"],
  denied: [],
  dispatched: ["completed", "failed", "expired"],
  completed: [],
  failed: [],
  expired: []
}

/** True when the lifecycle may move from `from` to `to`. */
export const canTransition = (from: LifecycleState, to: LifecycleState): boolean => transitions[from].includes(to)

/** Kind of principal. */
export const PrincipalKind = Schema.Literals(["user", "service", "agent"])
/** @see PrincipalKind */
export type PrincipalKind = typeof PrincipalKind.Type

/**
 * Every string of a request must have a canonical form (no lone UTF-16 surrogate), or sealing the envelope would fail
 * after the decision: such input is an invalid request at the boundary instead.
 */
const isWellFormed = Schema.makeFilter<string>((s) => s.isWellFormed() || "a well-formed Unicode string")
/** A finite number that JSON carries exactly: no integer beyond 2^53 - 1. */
const isExactNumber = Schema.makeFilter<number>(
  (n) => !Number.isInteger(n) || Number.isSafeInteger(n) || "an integer within ±(2^53 - 1)"
)

/** A string of a request: at most `max` characters, well-formed. */
const Text = (max: number) => Schema.String.pipe(Schema.check(Schema.isMaxLength(max), isWellFormed))

const Identifier = Schema.String.pipe(
  Schema.check(Schema.isMinLength(1), Schema.isMaxLength(256), Schema.isPattern(/^[^\u0000-\u001f]*$/), isWellFormed)
)

/** Who asks: the principal, its roles and tenant, and the chain it acts on behalf of. */
export const Subject = Schema.Struct({
  id: Identifier,
  kind: PrincipalKind,
  roles: Schema.Array(Identifier).pipe(Schema.check(Schema.isMaxLength(64))),
  tenant: Schema.optionalKey(Identifier),
  /** On-behalf-of chain, outermost first (e.g. the user an agent acts for). */
  delegation: Schema.optionalKey(
    Schema.Array(Schema.Struct({ id: Identifier, kind: PrincipalKind })).pipe(Schema.check(Schema.isMaxLength(8)))
  )
})
/** @see Subject */
export type Subject = typeof Subject.Type

/** Deployment environment. */
export const Environment = Schema.Literals(["dev", "staging", "prod"])
/** @see Environment */
export type Environment = typeof Environment.Type

/** Whatever policy may key on besides the subject and the tool. */
export const Scope = Schema.Struct({
  environment: Environment,
  project: Schema.optionalKey(Identifier),
  dataClassification: Schema.optionalKey(Identifier),
  region: Schema.optionalKey(Identifier)
})
/** @see Scope */
export type Scope = typeof Scope.Type

/** Requested or granted resources: numeric quantities (gpus, memoryGiB, replicas, timeoutSeconds) and labels (gpuType). */
export const Resources = Schema.Record(
  Schema.String.pipe(Schema.check(Schema.isPattern(/^[A-Za-z][A-Za-z0-9_]{0,63}$/))),
  Schema.Union([Schema.Finite.pipe(Schema.check(isExactNumber)), Text(256), Schema.Boolean])
)
/** @see Resources */
export type Resources = typeof Resources.Type

/** An escalation request: the reason code that names the missing capability, and a human justification. */
export const EscalationRequest = Schema.Struct({
  reason: EscalationReason,
  justification: Text(2048)
})
/** @see EscalationRequest */
export type EscalationRequest = typeof EscalationRequest.Type

/** Runtime constraints of a request: a pinned fingerprint, if any. */
export const RuntimeConstraint = Schema.Struct({
  fingerprint: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isPattern(/^[0-9a-f]{64}$/))))
})
/** @see RuntimeConstraint */
export type RuntimeConstraint = typeof RuntimeConstraint.Type

/** What the execution is. */
export const Execution = Schema.Struct({
  tool: Identifier,
  /** Absent when the tool is not registered. */
  toolVersion: Schema.optionalKey(Schema.String),
  action: Identifier,
  /** Absent when the tool or action is not registered (`CLASS_UNKNOWN`). */
  class: Schema.optionalKey(ExecutionClass),
  /** SHA-256 of the canonical input. */
  inputDigest: Schema.String
})
/** @see Execution */
export type Execution = typeof Execution.Type

/** What was asked for. `capabilities` is the action's declared set plus any the caller asked for. */
export const Requested = Schema.Struct({
  tier: Schema.optionalKey(Tier),
  capabilities: Schema.Array(CapabilityName),
  resources: Resources,
  runtime: Schema.optionalKey(RuntimeConstraint),
  escalation: Schema.optionalKey(EscalationRequest)
})
/** @see Requested */
export type Requested = typeof Requested.Type

/** An approved escalation, with the rule that approved it. */
export const ApprovedEscalation = Schema.Struct({
  reason: EscalationReason,
  justification: Schema.String,
  fromTier: Tier,
  toTier: Tier,
  capabilities: Schema.Array(CapabilityName),
  approvedBy: Schema.String
})
/** @see ApprovedEscalation */
export type ApprovedEscalation = typeof ApprovedEscalation.Type

/** What was granted. Absent on a denial. */
export const Granted = Schema.Struct({
  tier: Tier,
  capabilities: Schema.Array(CapabilityName),
  resources: Resources,
  /** The worker pool that runs it (`cache` when the decision is served from the deterministic cache). */
  pool: Schema.String,
  /** ISO-8601 instant after which the grant cannot be used. Every grant is single-use: its id is the envelope id. */
  expiresAt: Schema.String,
  escalation: Schema.optionalKey(ApprovedEscalation)
})
/** @see Granted */
export type Granted = typeof Granted.Type

/** The decision and why. */
export const Decision = Schema.Struct({
  outcome: Schema.Literals(["admitted", "denied"]),
  reasonCodes: Schema.Array(ReasonCode),
  matchedRules: Schema.Array(Schema.String),
  rationale: Schema.String,
  policySnapshotId: Schema.String,
  /** Content address of the sealed envelope (see module docs). */
  snapshotId: Schema.String,
  decidedAt: Schema.String
})
/** @see Decision */
export type Decision = typeof Decision.Type

/** Runtime compatibility verdict. */
export const RuntimeVerdict = Schema.Literals(["exact", "drift-allowed", "blocked", "unattested", "not-evaluated"])
/** @see RuntimeVerdict */
export type RuntimeVerdict = typeof RuntimeVerdict.Type

/** Runtime attestation result. */
export const Runtime = Schema.Struct({
  fingerprint: Schema.optionalKey(Schema.String),
  verdict: RuntimeVerdict,
  detail: Schema.optionalKey(Schema.String)
})
/** @see Runtime */
export type Runtime = typeof Runtime.Type

/** Deterministic cache resolution. */
export const Cache = Schema.Struct({
  eligible: Schema.Boolean,
  key: Schema.optionalKey(Schema.String),
  hit: Schema.Boolean,
  /** Why the request is not eligible, when it is not. */
  reason: Schema.optionalKey(Schema.String)
})
/** @see Cache */
export type Cache = typeof Cache.Type

/** Position of the envelope's decision record in the ledger. */
export const LedgerPosition = Schema.Struct({ index: Schema.Int, hash: Schema.String })
/** @see LedgerPosition */
export type LedgerPosition = typeof LedgerPosition.Type

/** The execution envelope. */
export const ExecutionEnvelope = Schema.Struct({
  id: Schema.String,
  version: Schema.Literal(VERSION),
  receivedAt: Schema.String,
  state: LifecycleState,
  subject: Subject,
  execution: Execution,
  scope: Scope,
  requested: Requested,
  granted: Schema.optionalKey(Granted),
  decision: Decision,
  runtime: Runtime,
  cache: Cache,
  ledger: Schema.optionalKey(LedgerPosition)
})
/** @see ExecutionEnvelope */
export type ExecutionEnvelope = typeof ExecutionEnvelope.Type

/** An envelope before sealing: everything but the snapshot id and the ledger position. */
export type UnsealedEnvelope = Omit<ExecutionEnvelope, "decision" | "ledger"> & {
  readonly decision: Omit<Decision, "snapshotId">
}

/** The sealed bytes of an envelope and their digest (the snapshot id). */
export interface SealedForm {
  /** RFC 8785 text of the unsealed envelope: exactly the bytes the snapshot id hashes. */
  readonly canonical: string
  /** SHA-256 of `canonical`. */
  readonly snapshotId: string
}

/** The envelope without its snapshot id and ledger position (what the snapshot id covers). */
export const unsealed = (envelope: ExecutionEnvelope): UnsealedEnvelope => {
  const { ledger: _ledger, decision, ...rest } = envelope
  const { snapshotId: _snapshotId, ...unsealedDecision } = decision
  return { ...rest, decision: unsealedDecision }
}

/**
 * Canonical form and snapshot id of an unsealed envelope, as the sealer computes them: through a serializer written
 * for the envelope's shape (the hot path), which yields exactly the generic RFC 8785 text.
 */
export const sealedForm = (envelope: UnsealedEnvelope): SealedForm | Canonical.CanonicalizationError => {
  const canonical = canonicalEnvelope(envelope) ?? Canonical.toCanonicalJsonOrError(envelope)
  return typeof canonical === "string" ? { canonical, snapshotId: sha256Hex(canonical) } : canonical
}

/**
 * The same, through the generic serializer: what verification uses, independently of the sealer's fast path, and
 * seeing every key an envelope object carries (an added key is a mutation too).
 */
const genericForm = (envelope: UnsealedEnvelope): SealedForm | Canonical.CanonicalizationError => {
  const canonical = Canonical.toCanonicalJsonOrError(envelope)
  return typeof canonical === "string" ? { canonical, snapshotId: sha256Hex(canonical) } : canonical
}

/** Adds the snapshot id to an unsealed envelope. */
export const withSnapshotId = (envelope: UnsealedEnvelope, snapshotId: string): ExecutionEnvelope =>
  ({ ...envelope, decision: { ...envelope.decision, snapshotId } }) as ExecutionEnvelope

/**
 * Recomputes the snapshot id of a sealed envelope: `true` when the envelope is exactly what was sealed.
 */
export const verifySeal = (envelope: ExecutionEnvelope): boolean => {
  const form = genericForm(unsealed(envelope))
  return !(form instanceof Canonical.CanonicalizationError) && form.snapshotId === envelope.decision.snapshotId
}

/** The content digest of a sealed envelope (its snapshot id, recomputed). */
export const digest = (envelope: ExecutionEnvelope): string | Canonical.CanonicalizationError => {
  const form = genericForm(unsealed(envelope))
  return form instanceof Canonical.CanonicalizationError ? form : form.snapshotId
}

/** Decodes an unknown value as an envelope (e.g. read back from a ledger or an HTTP body). */
export const decode = Schema.decodeUnknownEffect(ExecutionEnvelope)

/** Deep-freezes a value in place and returns it (a sealed envelope never changes). */
export const deepFreeze = <T>(value: T): T => {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
}
