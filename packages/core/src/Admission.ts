/**
 * The admission pipeline (SPEC §3–§9): one call admits an execution request end to end.
 *
 * classify → required capabilities → policy → escalation guard → attest the runtime → resolve the deterministic cache
 * → pick the tier pool → seal the decision → append it to the ledger → answer. Every decision, admitted or denied, is
 * in the ledger before the caller sees it. The pipeline fails closed: a service that fails, hangs past the admission
 * deadline or answers garbage ends the admission in a recorded denial with the reason code of its stage, and a ledger
 * that cannot record ends it in {@link LedgerUnavailable}; in no case is anything admitted. Grants the services return
 * are re-checked against the invariants of SPEC §3 before sealing, so even a faulty guard cannot over-grant.
 *
 * After admission, {@link Admission.dispatch} re-verifies the sealed envelope and uses its single-use grant,
 * {@link Admission.complete} records the execution outcome, and {@link Admission.execute} does both around a task run
 * in the tier's pool (or serves the verified cached output).
 * @module
 */
import { hostname } from "node:os"
import { Clock, Context, Data, Duration, Effect, Layer, Result, Schema } from "effect"
import { v7 as uuidv7 } from "uuid"
import { AdmissionRequest, InvalidRequest, invalidRequestOf, type AdmissionRequestInput } from "./AdmissionRequest.ts"
import { Attestor, defaultDriftPolicy, type Attestation } from "./Attestor.ts"
import * as Canonical from "./Canonical.ts"
import {
  CapabilityGuard,
  EscalationDenied,
  GrantRejected,
  GrantStoreUnavailable,
  PolicyDenied,
  ResourceLimitExceeded,
  type Authorization
} from "./CapabilityGuard.ts"
import { CapabilityUnknown, ClassUnknown, Classifier, ToolStageBlocked, type Classification } from "./Classifier.ts"
import { DecisionLog } from "./DecisionLog.ts"
import * as Determinism from "./DeterminismEngine.ts"
import * as Envelope from "./Envelope.ts"
import { decision } from "./internal/decision.ts"
import { sha256Hex } from "./internal/hash.ts"
import { isClassification, isPolicyMatch, isTier, VERDICTS, violation } from "./internal/serviceAnswers.ts"
import { IsolationRouter, PoolUnavailable, type PoolName, type Selection } from "./IsolationRouter.ts"
import { Ledger, LedgerUnavailable, type LedgerRecord, type RecordDraft, type RecordKind } from "./Ledger.ts"
import { PolicyEngine, PolicyUnavailable, type PolicyMatch, type PolicySnapshot } from "./PolicyEngine.ts"
import type { DenialCode, NoticeCode, ReasonCode } from "./ReasonCode.ts"
import { Sealer, SealerUnavailable } from "./Sealer.ts"

/** The runtime could not be attested or drifted past its budget. */
export class RuntimeRejected extends Schema.TaggedError<RuntimeRejected>()("RuntimeRejected", {
  code: Schema.Literals(["RUNTIME_DRIFT_BLOCKED", "RUNTIME_UNATTESTED", "RUNTIME_QUARANTINED"]),
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** A service of the pipeline failed, hung or answered garbage; the admission is denied with its stage's code. */
export class ServiceFailed extends Schema.TaggedError<ServiceFailed>()("ServiceFailed", {
  service: Schema.String,
  code: Schema.Literals(["CLASS_UNKNOWN", "POLICY_UNAVAILABLE", "RUNTIME_UNATTESTED", "POOL_UNAVAILABLE"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.service} failed: ${this.detail}`
  }
}

/** A sealed envelope presented for dispatch is not one this ledger admitted (forged, altered, denied or unknown). */
export class EnvelopeRejected extends Schema.TaggedError<EnvelopeRejected>()("EnvelopeRejected", {
  envelopeId: Schema.String,
  detail: Schema.String
}) {
  /** Reason code of this rejection. */
  readonly code = "ENVELOPE_INVALID" as const
  override get message(): string {
    return this.detail
  }
}

/** Why an admission was denied: the typed error of the stage that denied it. */
export type DenialReason =
  | ClassUnknown
  | CapabilityUnknown
  | ToolStageBlocked
  | PolicyDenied
  | PolicyUnavailable
  | EscalationDenied
  | ResourceLimitExceeded
  | RuntimeRejected
  | PoolUnavailable
  | ServiceFailed

/** A recorded denial: the sealed denied envelope (with its ledger position) and the typed reason. */
export class Denied extends Data.TaggedError("Denied")<{
  readonly envelope: Envelope.ExecutionEnvelope
  readonly reason: DenialReason
}> {
  /** The decision's reason codes. */
  get reasonCodes(): ReadonlyArray<ReasonCode> {
    return this.envelope.decision.reasonCodes
  }
  override get message(): string {
    return `admission denied (${this.envelope.decision.reasonCodes.join(", ")}): ${this.envelope.decision.rationale}`
  }
}

/** Every way an admission can end other than admitted. */
export type AdmissionError = Denied | InvalidRequest | LedgerUnavailable | SealerUnavailable

/** An admitted request. */
export interface Admitted {
  readonly _tag: "Admitted"
  /** The sealed envelope with the position of its decision record. */
  readonly envelope: Envelope.ExecutionEnvelope
  /** The verified cached output, when the decision is served from the deterministic cache. */
  readonly cached?: { readonly output: unknown; readonly outputDigest: string }
}

/** A dispatched execution: the grant is used. */
export interface Dispatched {
  readonly envelope: Envelope.ExecutionEnvelope
  readonly pool: string
  readonly worker: string
  readonly startedAt: number
}

/** What {@link Admission.complete} records. */
export interface ExecutionOutcome {
  readonly status: "completed" | "failed"
  /** The output: digested (and cached when the envelope is cache-eligible). */
  readonly output?: unknown
  /** The output digest, when the caller computed it (e.g. a streamed response). */
  readonly outputDigest?: string | undefined
  /** Status of the transport, e.g. the HTTP status. */
  readonly statusCode?: number | undefined
  readonly error?: string | undefined
  readonly durationMs?: number | undefined
  /** Worker identity (defaults to this process). */
  readonly worker?: string | undefined
  /** True when the output was served from the cache (no execution happened). */
  readonly cached?: boolean | undefined
}

/** What the dispatching side expects of an envelope (a worker: the pool it serves). */
export interface DispatchExpectation {
  readonly pool?: string | undefined
  /** Identity of the worker, recorded with the dispatch (defaults to this process). */
  readonly worker?: string | undefined
}

/** Everything that can stop a dispatch. */
export type DispatchError = EnvelopeRejected | GrantRejected | GrantStoreUnavailable | LedgerUnavailable

/** Options of the pipeline. */
export interface AdmissionOptions {
  /** Deadline of the decision stages; a stage still running then denies with its code (default 1000 ms). */
  readonly admissionTimeoutMs?: number | undefined
  /** Identity recorded for in-process executions (default `hostname/pid`). */
  readonly worker?: string | undefined
}

/** The admission pipeline service. */
export class Admission extends Context.Service<
  Admission,
  {
    /** Validates and admits a request: admitted, or a recorded denial, or a typed failure to record. */
    admit(request: AdmissionRequestInput | unknown): Effect.Effect<Admitted, AdmissionError>
    /**
     * Re-verifies a sealed envelope against the ledger and uses its single-use grant. A worker passes the pool it serves:
     * an envelope granted another pool is refused. Every refusal is recorded as an incident.
     */
    dispatch(
      envelope: Envelope.ExecutionEnvelope,
      expected?: DispatchExpectation
    ): Effect.Effect<Dispatched, DispatchError>
    /**
     * Admits and, when admitted, uses the grant at once, for an executor in this process (the gate): no re-verification
     * is needed, as the sealed envelope never left the pipeline.
     */
    admitAndDispatch(
      request: AdmissionRequestInput | unknown
    ): Effect.Effect<{ readonly admitted: Admitted; readonly dispatched: Dispatched }, AdmissionError | DispatchError>
    /** Records an execution outcome (output digest, runtime fingerprint, worker identity) in the ledger. */
    complete(
      envelope: Envelope.ExecutionEnvelope,
      outcome: ExecutionOutcome
    ): Effect.Effect<LedgerRecord, LedgerUnavailable | Canonical.CanonicalizationError>
    /**
     * Dispatches an admitted request and runs `task` in its tier's pool (or serves the cached output), then records the
     * outcome. The task's failure is recorded and returned.
     */
    execute<A, E>(
      admitted: Admitted,
      task: (envelope: Envelope.ExecutionEnvelope) => Effect.Effect<A, E>
    ): Effect.Effect<A, E | DispatchError | PoolUnavailable | Canonical.CanonicalizationError>
  }
>()("@egl/core/Admission") {
  /** The pipeline over the other services' layers. */
  static readonly layer = (options?: AdmissionOptions) => Layer.effect(Admission, make(options))
}

const decodeRequest = Schema.decodeUnknownExit(AdmissionRequest)

const DENIAL_TAGS: ReadonlySet<string> = new Set([
  "ClassUnknown",
  "CapabilityUnknown",
  "ToolStageBlocked",
  "PolicyDenied",
  "PolicyUnavailable",
  "EscalationDenied",
  "ResourceLimitExceeded",
  "RuntimeRejected",
  "PoolUnavailable",
  "ServiceFailed"
])
const isDenialReason = (e: unknown): e is DenialReason =>
  typeof e === "object" && e !== null && DENIAL_TAGS.has((e as { _tag?: string })._tag ?? "")

const describe = (u: unknown): string =>
  u instanceof Error ? u.message : typeof u === "string" ? u : "unexpected failure"

/** An ISO-8601 formatter that remembers its last answer: admissions within one millisecond share the string. */
const isoMemo = () => {
  let lastMs = Number.NaN
  let lastText = ""
  return (ms: number): string => {
    if (ms !== lastMs) {
      lastText = new Date(ms).toISOString()
      lastMs = ms
    }
    return lastText
  }
}
// Decision times and expiry times each get their own memo, so one does not evict the other.
const iso = isoMemo()
const isoExpiry = isoMemo()

interface Incident {
  readonly kind: RecordKind
  readonly body: Record<string, unknown>
}

/** Builds the pipeline. */
export const make = (options?: AdmissionOptions) =>
  Effect.gen(function* () {
    const classifier = yield* Classifier
    const policy = yield* PolicyEngine
    const guard = yield* CapabilityGuard
    const attestor = yield* Attestor
    const determinism = yield* Determinism.DeterminismEngine
    const router = yield* IsolationRouter
    const sealer = yield* Sealer
    const ledger = yield* Ledger
    const { logger } = yield* DecisionLog
    const deadline = Duration.millis(options?.admissionTimeoutMs ?? 1000)
    const worker = options?.worker ?? `${hostname()}/${process.pid}`

    /** A malformed answer from the stage in progress: a denial with its code. */
    const malformed = (progress: Progress) =>
      Effect.fail(
        decision(
          () => new ServiceFailed({ service: progress.service, code: progress.code, detail: "malformed answer" })
        )
      )

    interface Progress {
      readonly inputDigest: string
      /** Where the admission is, so a deadline knows what hung. */
      phase: "decide" | "seal" | "record"
      service: string
      code: ServiceFailed["code"]
      classification?: Classification
      snapshot?: PolicySnapshot
      attestation?: Attestation
    }

    interface Decided {
      readonly classification: Classification
      readonly snapshot: PolicySnapshot
      readonly match: PolicyMatch
      readonly auth: Authorization
      readonly attestation: Attestation
      readonly selection: Selection | undefined
      readonly cache: Envelope.Cache
      readonly cached: Admitted["cached"]
      readonly notices: ReadonlyArray<NoticeCode>
      readonly incidents: ReadonlyArray<Incident>
    }

    /**
     * The decision stages. A defect (a service that throws) or a failure that is not a denial (a service that fails
     * with something unexpected) becomes a denial with the code of the stage in progress, checked once around all of
     * them rather than per stage: the hot path pays for one handler.
     */
    const decide = (
      req: AdmissionRequest,
      id: string,
      now: number,
      progress: Progress
    ): Effect.Effect<Decided, DenialReason> =>
      decideStages(req, id, now, progress).pipe(
        Effect.catchCause((cause) => {
          const failure = cause.reasons.find((r) => r._tag === "Fail")
          if (failure !== undefined && failure._tag === "Fail" && isDenialReason(failure.error))
            return Effect.fail(failure.error)
          const defect = cause.reasons.find((r) => r._tag === "Die" || r._tag === "Fail")
          const detail =
            defect === undefined ? "interrupted" : describe(defect._tag === "Die" ? defect.defect : defect.error)
          return Effect.fail(
            decision(() => new ServiceFailed({ service: progress.service, code: progress.code, detail }))
          )
        })
      )

    const decideStages = (
      req: AdmissionRequest,
      id: string,
      now: number,
      progress: Progress
    ): Effect.Effect<Decided, unknown> =>
      Effect.gen(function* () {
        progress.service = "PolicyEngine"
        progress.code = "POLICY_UNAVAILABLE"
        const snapshot = yield* policy.current
        if (typeof snapshot?.id !== "string") return yield* malformed(progress)
        progress.snapshot = snapshot

        progress.service = "Classifier"
        progress.code = "CLASS_UNKNOWN"
        const requested = req.requested
        const classification = yield* classifier.classify({
          tool: req.tool,
          action: req.action,
          input: req.input,
          requestedCapabilities: requested?.capabilities
        })
        if (!isClassification(classification)) return yield* malformed(progress)
        progress.classification = classification

        progress.service = "PolicyEngine"
        progress.code = "POLICY_UNAVAILABLE"
        const resources = requested?.resources ?? {}
        const escalation = requested?.escalation
        const match = yield* policy.match({
          classification,
          subject: req.subject,
          scope: req.scope,
          resources,
          escalationReason: escalation?.reason
        })
        if (!isPolicyMatch(match, snapshot.id)) return yield* malformed(progress)

        progress.service = "CapabilityGuard"
        const auth = yield* guard.authorize({
          classification,
          match,
          requestedTier: requested?.tier,
          resources,
          escalation
        })
        if (violation(auth, classification, match, resources, escalation?.reason) !== undefined)
          return yield* malformed(progress)

        progress.service = "Attestor"
        progress.code = "RUNTIME_UNATTESTED"
        const attestation = attestor.attest({
          tier: auth.tier,
          executionClass: classification.executionClass,
          environment: req.scope.environment,
          constraint: requested?.runtime,
          now,
          drift: snapshot.policy.drift ?? defaultDriftPolicy
        })
        if (typeof attestation !== "object" || attestation === null || !VERDICTS.has(attestation.verdict))
          return yield* malformed(progress)
        progress.attestation = attestation
        if (attestation.verdict === "blocked" || attestation.verdict === "unattested") {
          const code =
            attestation.code === "RUNTIME_DRIFT_BLOCKED" || attestation.code === "RUNTIME_QUARANTINED"
              ? attestation.code
              : "RUNTIME_UNATTESTED"
          return yield* decision(() => new RuntimeRejected({ code, detail: attestation.detail }))
        }

        const notices: Array<NoticeCode> = [...auth.notices]
        const incidents: Array<Incident> = []
        if (attestation.verdict === "drift-allowed") notices.push("RUNTIME_DRIFT_ALLOWED")

        // Deterministic cache: best effort, a failing cache is a miss and never a denial.
        let cache: Envelope.Cache
        let cached: Admitted["cached"]
        const sideEffects = auth.capabilities.some((c) => classifier.capability(c)?.sideEffects === true)
        const eligibility = Determinism.eligibility({
          executionClass: classification.executionClass,
          cacheable: classification.cacheable,
          tier: auth.tier,
          sideEffects,
          runtimeVerdict: attestation.verdict
        })
        if (!eligibility.eligible || attestation.fingerprint === undefined) {
          cache = { eligible: false, hit: false, reason: eligibility.reason ?? "no attested runtime fingerprint" }
        } else {
          const capDigest = Determinism.capabilityEnvelopeDigest({
            tier: auth.tier,
            capabilities: auth.capabilities,
            resources: auth.resources
          })
          if (typeof capDigest !== "string") {
            cache = { eligible: false, hit: false, reason: capDigest.message }
          } else {
            const key = Determinism.cacheKey({
              tool: classification.tool,
              action: classification.action,
              inputDigest: progress.inputDigest,
              runtimeFingerprint: attestation.fingerprint,
              policySnapshotId: snapshot.id,
              capabilityEnvelopeDigest: capDigest
            })
            const found = yield* determinism
              .lookup(key)
              .pipe(Effect.catchDefect(() => Effect.succeed({ _tag: "Miss", reason: "store-error" } as const)))
            if (found._tag === "Hit") {
              cache = { eligible: true, key, hit: true }
              cached = { output: found.output, outputDigest: found.entry.outputDigest }
              notices.push("CACHE_HIT")
            } else {
              cache = { eligible: true, key, hit: false }
              if (found._tag === "Poisoned") {
                notices.push("CACHE_POISONED")
                incidents.push({
                  kind: "incident",
                  body: {
                    type: "CACHE_POISONED",
                    envelopeId: id,
                    key,
                    expectedDigest: found.expectedDigest,
                    actualDigest: found.actualDigest
                  }
                })
              }
            }
          }
        }

        let selection: Selection | undefined
        if (cached === undefined) {
          progress.service = "IsolationRouter"
          progress.code = "POOL_UNAVAILABLE"
          selection = yield* router.select(auth.tier, { crossTierFallback: match.crossTierFallback })
          const s = selection
          const valid =
            typeof s === "object" &&
            s !== null &&
            typeof s.pool === "string" &&
            isTier(s.tier) &&
            (s.tier === auth.tier || (s.tier > auth.tier && s.fallback === true && match.crossTierFallback))
          if (!valid) return yield* malformed(progress)
          if (selection.fallback) {
            notices.push("CROSS_TIER_FALLBACK")
            incidents.push({
              kind: "incident",
              body: { type: "CROSS_TIER_FALLBACK", envelopeId: id, tier: auth.tier, pool: selection.pool }
            })
          }
        }
        return { classification, snapshot, match, auth, attestation, selection, cache, cached, notices, incidents }
      })

    /** Seals through the sealer; a defect or a malformed seal is {@link SealerUnavailable} (fail closed). */
    const seal = (unsealed: Envelope.UnsealedEnvelope, progress: Progress) => {
      progress.phase = "seal"
      return sealer.seal(unsealed).pipe(
        Effect.catchDefect((d) => Effect.fail(new SealerUnavailable({ detail: describe(d) }))),
        Effect.flatMap((sealed) =>
          typeof sealed === "object" &&
          sealed !== null &&
          typeof sealed.canonical === "string" &&
          typeof sealed.snapshotId === "string" &&
          sealed.envelope?.id === unsealed.id &&
          sealed.envelope.decision?.snapshotId === sealed.snapshotId
            ? Effect.succeed(sealed)
            : Effect.fail(new SealerUnavailable({ detail: "the sealer returned a malformed seal" }))
        )
      )
    }

    const record = (
      sealed: {
        readonly canonical: string
        readonly snapshotId: string
        readonly envelope: Envelope.ExecutionEnvelope
      },
      at: string,
      incidents: ReadonlyArray<Incident>,
      progress: Progress
    ) => {
      progress.phase = "record"
      const drafts: Array<RecordDraft> = [
        { kind: "decision", at, ref: sealed.envelope.id, body: sealed.canonical, digest: sealed.snapshotId }
      ]
      for (const i of incidents) {
        const body = Canonical.toCanonicalJsonSync({ ...i.body, at, snapshotId: sealed.snapshotId })
        drafts.push({ kind: i.kind, at, ref: sealed.envelope.id, body, digest: sha256Hex(body) })
      }
      return ledger.appendAll(drafts).pipe(
        Effect.catchDefect((d) => Effect.fail(new LedgerUnavailable({ detail: describe(d) }))),
        Effect.flatMap((records) => {
          const r = Array.isArray(records) ? (records[0] as LedgerRecord | undefined) : undefined
          if (
            records.length !== drafts.length ||
            typeof r?.index !== "number" ||
            typeof r.hash !== "string" ||
            r.digest !== sealed.snapshotId
          ) {
            return Effect.fail(new LedgerUnavailable({ detail: "the ledger returned a malformed receipt" }))
          }
          return Effect.succeed({
            ...sealed.envelope,
            ledger: { index: r.index, hash: r.hash }
          } as Envelope.ExecutionEnvelope)
        })
      )
    }

    const denialCode = (reason: DenialReason): DenialCode => {
      switch (reason._tag) {
        case "PolicyUnavailable":
          return "POLICY_UNAVAILABLE"
        case "PoolUnavailable":
          return "POOL_UNAVAILABLE"
        default:
          return reason.code
      }
    }

    const admit = (input: unknown): Effect.Effect<Admitted, AdmissionError> =>
      Effect.gen(function* () {
        const decoded = decodeRequest(input)
        if (decoded._tag === "Failure") {
          return yield* decision(() => invalidRequestOf(decoded.cause, "the admission request is invalid"))
        }
        const req = decoded.value
        const inputText = Canonical.toCanonicalJsonOrError(req.input ?? null)
        if (typeof inputText !== "string") {
          return yield* new InvalidRequest({
            detail: inputText.message,
            issues: [{ path: `input${inputText.path ? "." + inputText.path : ""}`, message: inputText.reason }]
          })
        }
        const now = yield* Clock.currentTimeMillis
        const id = uuidv7()
        const progress: Progress = {
          phase: "decide",
          service: "PolicyEngine",
          code: "POLICY_UNAVAILABLE",
          inputDigest: sha256Hex(inputText)
        }
        // One deadline covers deciding, sealing and recording (one timer per admission): a stage that hangs denies with
        // its own code, a hung sealer or ledger is unavailable; either way nothing is admitted.
        return yield* conclude(req, id, now, progress, Effect.result(decide(req, id, now, progress))).pipe(
          Effect.timeoutOrElse({
            duration: deadline,
            orElse: () => {
              const detail = `no answer within ${Duration.toMillis(deadline)} ms`
              if (progress.phase === "seal") return Effect.fail(new SealerUnavailable({ detail: `sealer: ${detail}` }))
              if (progress.phase === "record")
                return Effect.fail(new LedgerUnavailable({ detail: `ledger: ${detail}` }))
              const failed = new ServiceFailed({ service: progress.service, code: progress.code, detail })
              return conclude(req, id, now, progress, Effect.succeed(Result.fail(failed))).pipe(
                Effect.timeoutOrElse({
                  duration: deadline,
                  orElse: () =>
                    Effect.fail(
                      progress.phase === "seal" ? new SealerUnavailable({ detail }) : new LedgerUnavailable({ detail })
                    )
                })
              )
            }
          })
        )
      })

    /** Seals and records the outcome of the decision stages: the admitted envelope, or the recorded denial. */
    const conclude = (
      req: AdmissionRequest,
      id: string,
      now: number,
      progress: Progress,
      decided: Effect.Effect<Result.Result<Decided, DenialReason>>
    ): Effect.Effect<Admitted, AdmissionError> =>
      Effect.gen(function* () {
        const outcome = yield* decided
        const receivedAt = iso(now)
        const decidedMs = yield* Clock.currentTimeMillis
        const decidedAt = iso(decidedMs)
        const cls = progress.classification
        const execution = {
          tool: req.tool,
          ...(cls !== undefined ? { toolVersion: cls.toolVersion } : {}),
          action: req.action,
          ...(cls !== undefined ? { class: cls.executionClass } : {}),
          inputDigest: progress.inputDigest
        }
        const requested = req.requested
        const requestedBase = {
          ...(requested?.tier !== undefined ? { tier: requested.tier } : {}),
          resources: requested?.resources ?? {},
          ...(requested?.runtime !== undefined ? { runtime: requested.runtime } : {}),
          ...(requested?.escalation !== undefined ? { escalation: requested.escalation } : {})
        }

        if (outcome._tag === "Failure") {
          const reason = outcome.failure
          const code = denialCode(reason)
          const attestation = progress.attestation
          const unsealed: Envelope.UnsealedEnvelope = {
            id,
            version: Envelope.VERSION,
            receivedAt,
            state: "denied",
            subject: req.subject,
            execution,
            scope: req.scope,
            requested: { ...requestedBase, capabilities: cls?.capabilities ?? requested?.capabilities ?? [] },
            decision: {
              outcome: "denied",
              reasonCodes: [code],
              matchedRules: "matchedRules" in reason ? [...reason.matchedRules] : "rule" in reason ? [reason.rule] : [],
              rationale: reason.message,
              policySnapshotId: progress.snapshot?.id ?? "",
              decidedAt
            },
            runtime:
              attestation !== undefined
                ? {
                    ...(attestation.fingerprint !== undefined ? { fingerprint: attestation.fingerprint } : {}),
                    verdict: attestation.verdict,
                    detail: attestation.detail
                  }
                : { verdict: "not-evaluated" },
            cache: { eligible: false, hit: false, reason: "denied" }
          }
          const incidents: Array<Incident> =
            code === "RUNTIME_DRIFT_BLOCKED" || code === "RUNTIME_QUARANTINED"
              ? [
                  {
                    kind: "incident",
                    body: {
                      type: code,
                      envelopeId: id,
                      fingerprint: attestation?.fingerprint ?? "",
                      detail: reason.message
                    }
                  }
                ]
              : []
          if (requested?.escalation !== undefined) {
            incidents.push({
              kind: "escalation",
              body: { envelopeId: id, outcome: "denied", reason: requested.escalation.reason, code }
            })
          }
          const sealed = yield* seal(unsealed, progress)
          const envelope = yield* record(sealed, decidedAt, incidents, progress)
          logger?.info(
            {
              envelopeId: id,
              outcome: "denied",
              reasonCodes: [code],
              tool: req.tool,
              action: req.action,
              principal: req.subject.id,
              ledgerIndex: envelope.ledger?.index
            },
            "admission denied"
          )
          return yield* decision(() => new Denied({ envelope, reason }))
        }

        const d = outcome.success
        const expiresAt = isoExpiry(decidedMs + d.auth.ttlSeconds * 1000)
        const unsealed: Envelope.UnsealedEnvelope = {
          id,
          version: Envelope.VERSION,
          receivedAt,
          state: "admitted",
          subject: req.subject,
          execution,
          scope: req.scope,
          requested: {
            ...requestedBase,
            capabilities:
              d.match.required.length > 0
                ? [...new Set([...d.classification.capabilities, ...d.match.required])].sort()
                : d.classification.capabilities
          },
          granted: {
            tier: d.auth.tier,
            capabilities: d.auth.capabilities,
            resources: d.auth.resources,
            pool: d.selection?.pool ?? "cache",
            expiresAt,
            ...(d.auth.escalation !== undefined ? { escalation: d.auth.escalation } : {})
          },
          decision: {
            outcome: "admitted",
            reasonCodes: d.notices,
            matchedRules: d.auth.matchedRules,
            rationale: d.auth.rationale,
            policySnapshotId: d.snapshot.id,
            decidedAt
          },
          runtime: {
            ...(d.attestation.fingerprint !== undefined ? { fingerprint: d.attestation.fingerprint } : {}),
            verdict: d.attestation.verdict,
            ...(d.attestation.verdict !== "exact" ? { detail: d.attestation.detail } : {})
          },
          cache: d.cache
        }
        const incidents =
          d.auth.escalation !== undefined
            ? [
                ...d.incidents,
                {
                  kind: "escalation" as const,
                  body: {
                    envelopeId: id,
                    outcome: "approved",
                    reason: d.auth.escalation.reason,
                    fromTier: d.auth.escalation.fromTier,
                    toTier: d.auth.escalation.toTier,
                    approvedBy: d.auth.escalation.approvedBy,
                    expiresAt
                  }
                }
              ]
            : d.incidents
        const sealed = yield* seal(unsealed, progress)
        const envelope = yield* record(sealed, decidedAt, incidents, progress)
        logger?.info(
          {
            envelopeId: id,
            outcome: "admitted",
            reasonCodes: d.notices,
            tool: req.tool,
            action: req.action,
            principal: req.subject.id,
            tier: d.auth.tier,
            ledgerIndex: envelope.ledger?.index
          },
          "admission admitted"
        )
        return d.cached !== undefined
          ? { _tag: "Admitted", envelope, cached: d.cached }
          : { _tag: "Admitted", envelope }
      })

    const executionRecord = (envelope: Envelope.ExecutionEnvelope, at: string, body: Record<string, unknown>) =>
      Effect.flatMap(
        Canonical.toCanonicalJson({
          envelopeId: envelope.id,
          snapshotId: envelope.decision.snapshotId,
          policySnapshotId: envelope.decision.policySnapshotId,
          at,
          ...body
        }),
        (text) => ledger.append({ kind: "execution", at, ref: envelope.id, body: text, digest: sha256Hex(text) })
      )

    const incident = (envelopeId: string, at: string, type: string, detail: string) =>
      Effect.ignore(
        Effect.flatMap(Canonical.toCanonicalJson({ type, envelopeId, at, detail }), (body) =>
          ledger.append({ kind: "incident", at, ref: envelopeId, body, digest: sha256Hex(body) })
        )
      )

    const dispatch = (
      envelope: Envelope.ExecutionEnvelope,
      expected?: DispatchExpectation
    ): Effect.Effect<Dispatched, DispatchError> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const at = iso(now)
        const id = typeof envelope === "object" && envelope !== null ? String(envelope.id) : "unknown"
        // A refused envelope is an incident: a forged, altered or misrouted envelope reached an executor.
        const reject = (detail: string) =>
          Effect.andThen(
            incident(id.slice(0, 256), at, "ENVELOPE_INVALID", detail),
            Effect.fail(new EnvelopeRejected({ envelopeId: id, detail }))
          )
        if (typeof envelope !== "object" || envelope === null || typeof envelope.id !== "string")
          return yield* reject("not an envelope")
        if (!Envelope.verifySeal(envelope))
          return yield* reject("the envelope does not match its snapshot id (altered or forged)")
        if (envelope.decision.outcome !== "admitted" || envelope.granted === undefined)
          return yield* reject("the envelope was not admitted")
        if (expected?.pool !== undefined && envelope.granted.pool !== expected.pool) {
          return yield* reject(`the envelope is granted ${envelope.granted.pool}, not ${expected.pool}`)
        }
        const stored = yield* ledger.findEnvelope(envelope.id)
        if (stored === undefined || stored.envelope.decision.snapshotId !== envelope.decision.snapshotId) {
          return yield* reject("the envelope is not in the ledger")
        }
        return yield* useGrant(envelope, envelope.granted, now, at, expected?.worker ?? worker)
      })

    /** Uses the grant of an admitted envelope and records the dispatch (the envelope is known to be genuine). */
    const useGrant = (
      envelope: Envelope.ExecutionEnvelope,
      granted: Envelope.Granted,
      now: number,
      at: string,
      by: string
    ): Effect.Effect<Dispatched, DispatchError> =>
      Effect.gen(function* () {
        yield* guard
          .consume({ envelopeId: envelope.id, expiresAt: granted.expiresAt }, now)
          .pipe(
            Effect.tapError((e) =>
              e._tag === "GrantRejected" ? incident(envelope.id, at, e.code, e.detail) : Effect.void
            )
          )
        yield* executionRecord(envelope, at, {
          phase: "dispatched",
          pool: granted.pool,
          worker: by,
          runtimeFingerprint: envelope.runtime.fingerprint ?? ""
        }).pipe(
          Effect.catchTag("CanonicalizationError", (e) => Effect.fail(new LedgerUnavailable({ detail: e.message })))
        )
        return { envelope, pool: granted.pool, worker: by, startedAt: now }
      })

    /**
     * Admits and, when admitted, dispatches at once: the sealed envelope never left this fiber, so there is nothing to
     * re-verify; its grant is used and the dispatch recorded (what an in-process executor such as the gate does).
     */
    const admitAndDispatch = (
      request: AdmissionRequestInput | unknown
    ): Effect.Effect<
      { readonly admitted: Admitted; readonly dispatched: Dispatched },
      AdmissionError | DispatchError
    > =>
      Effect.flatMap(admit(request), (admitted) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.map(useGrant(admitted.envelope, admitted.envelope.granted!, now, iso(now), worker), (dispatched) => ({
            admitted,
            dispatched
          }))
        )
      )

    const complete = (envelope: Envelope.ExecutionEnvelope, outcome: ExecutionOutcome) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const at = iso(now)
        let outputDigest = outcome.outputDigest
        if (outputDigest === undefined && outcome.output !== undefined)
          outputDigest = yield* Canonical.digest(outcome.output)
        const rec = yield* executionRecord(envelope, at, {
          phase: outcome.status,
          ...(outputDigest !== undefined ? { outputDigest } : {}),
          ...(outcome.statusCode !== undefined ? { statusCode: outcome.statusCode } : {}),
          ...(outcome.error !== undefined ? { error: outcome.error } : {}),
          ...(outcome.durationMs !== undefined ? { durationMs: outcome.durationMs } : {}),
          ...(outcome.cached === true ? { cached: true } : {}),
          runtimeFingerprint: envelope.runtime.fingerprint ?? "",
          worker: outcome.worker ?? worker
        })
        const key = envelope.cache.key
        if (
          outcome.status === "completed" &&
          outcome.cached !== true &&
          key !== undefined &&
          envelope.cache.eligible &&
          outcome.output !== undefined &&
          envelope.granted !== undefined
        ) {
          yield* Effect.ignore(
            determinism.store(key, outcome.output, {
              tier: envelope.granted.tier,
              durationMs: outcome.durationMs,
              runtimeFingerprint: envelope.runtime.fingerprint ?? "",
              policySnapshotId: envelope.decision.policySnapshotId,
              toolVersion: envelope.execution.toolVersion ?? ""
            })
          )
        }
        logger?.info(
          { envelopeId: envelope.id, outcome: outcome.status, outputDigest, ledgerIndex: rec.index },
          "execution recorded"
        )
        return rec
      })

    const execute = <A, E>(admitted: Admitted, task: (envelope: Envelope.ExecutionEnvelope) => Effect.Effect<A, E>) =>
      Effect.gen(function* () {
        const d = yield* dispatch(admitted.envelope)
        if (admitted.cached !== undefined) {
          yield* complete(d.envelope, {
            status: "completed",
            outputDigest: admitted.cached.outputDigest,
            cached: true,
            durationMs: 0
          })
          // The cache key covers tool, action, input, runtime, policy and capabilities: the cached output is what this
          // very task returned for an identical execution.
          return admitted.cached.output as A
        }
        const exit = yield* Effect.exit(router.run(d.pool as PoolName, task(d.envelope)))
        const durationMs = (yield* Clock.currentTimeMillis) - d.startedAt
        if (exit._tag === "Success") {
          yield* complete(d.envelope, { status: "completed", output: exit.value, durationMs })
          return exit.value
        }
        yield* complete(d.envelope, { status: "failed", error: describe(exit.cause), durationMs })
        return yield* exit
      })

    return Admission.of({ admit, dispatch, admitAndDispatch, complete, execute })
  })
