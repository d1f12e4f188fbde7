/**
 * The Promise facade: EGL for callers who do not use Effect.
 *
 * `createGovernance(config)` validates the configuration once, builds every service layer into one `ManagedRuntime`,
 * records the policy snapshot in the ledger, and returns an object whose methods resolve to discriminated unions that
 * carry the same tagged errors the Effect API fails with (`result.ok ? result.envelope : result.error._tag`). Nothing
 * throws for a denial; `createGovernance` rejects with {@link ConfigInvalid} (or the layer's typed error) when the
 * configuration cannot work.
 *
 * @example
 * ```ts
 * import { createGovernance } from "@egl/core"
 * const egl = await createGovernance({ registry, policy, ledger: { file: "./ledger.jsonl" } })
 * const result = await egl.admit({ tool: "serving", action: "deploy_model", subject, scope: { environment: "dev" },
 *   requested: { resources: { gpus: 2 } } })
 * if (result.ok) console.log(result.envelope.granted) else console.log(result.error._tag, result.reasonCodes)
 * await egl.close()
 * ```
 * @module
 */
import { Cause, Effect, Exit, Layer, ManagedRuntime, Schema, Scope } from "effect"
import type { Logger, LoggerOptions } from "pino"
import {
  Admission,
  type AdmissionError,
  type Admitted,
  type DispatchError,
  type DispatchExpectation,
  type Dispatched,
  type ExecutionOutcome
} from "./Admission.ts"
import type { AdmissionRequestInput } from "./AdmissionRequest.ts"
import { Attestor, type CurrentManifestOptions, type ManifestError } from "./Attestor.ts"
import * as Canonical from "./Canonical.ts"
import { CapabilityGuard, type GrantStore } from "./CapabilityGuard.ts"
import { Classifier, type RegistryInput, type RegistryInvalid } from "./Classifier.ts"
import { DecisionLog } from "./DecisionLog.ts"
import { DeterminismEngine, lruStore, type CacheStore } from "./DeterminismEngine.ts"
import type { ExecutionEnvelope } from "./Envelope.ts"
import * as FileLedger from "./FileLedger.ts"
import { IsolationRouter, type PoolConfigError, type PoolUnavailable, type RouterConfig } from "./IsolationRouter.ts"
import {
  Ledger,
  LedgerUnavailable,
  type LedgerOptions,
  type LedgerRecord,
  type Head,
  type LedgerStorage,
  type StoredEnvelope,
  type StoredRecord,
  type VerifyOptions,
  type VerifyReport
} from "./Ledger.ts"
import {
  PolicyEngine,
  type PolicyInput,
  type PolicyInvalid,
  type PolicySnapshot,
  type PolicyUnavailable
} from "./PolicyEngine.ts"
import type { ReasonCode } from "./ReasonCode.ts"
import { Sealer, type SealerKeys, type SealerUnavailable } from "./Sealer.ts"
import { sha256Hex } from "./internal/hash.ts"

/** Where the ledger lives. */
export type LedgerConfig =
  | "memory"
  | { readonly file: string }
  /** Any backend, e.g. `SqliteLedger.open(path)` from `@egl/ledger-sqlite`. */
  | { readonly storage: Effect.Effect<LedgerStorage, LedgerUnavailable, Scope.Scope> }

/** Everything `createGovernance` needs. */
export interface GovernanceConfig {
  /** Tools, actions, capability catalog (see `Classifier`). */
  readonly registry: RegistryInput
  /** The policy in force (see `PolicyEngine`). */
  readonly policy: PolicyInput
  /**
   * Signing key; generated when absent, which suits tests and throwaway ledgers only: a ledger that outlives the process
   * needs the same key (or its public key in `ledgerOptions.trustedPublicKeys`) for its checkpoints to verify.
   */
  readonly keys?: SealerKeys | undefined
  /** Ledger backend (default: memory). */
  readonly ledger?: LedgerConfig | undefined
  readonly ledgerOptions?: LedgerOptions | undefined
  /**
   * Runtime attestation: by default this process registers itself as the worker of every tier (in-process pools);
   * `false` registers nothing (workers register through the Effect API).
   */
  readonly runtime?: CurrentManifestOptions | false | undefined
  /** Pool settings per tier. */
  readonly pools?: RouterConfig | undefined
  /** Deterministic cache: LRU bounds, or another store. */
  readonly cache?:
    | { readonly max?: number | undefined; readonly ttlMs?: number | undefined }
    | { readonly store: CacheStore; readonly ttlMs?: number | undefined }
    | undefined
  /** Where used grants are remembered (default: in memory). */
  readonly grants?: GrantStore | undefined
  /** Decision logs: a pino logger or its options; off when absent or false. */
  readonly logger?: Logger | LoggerOptions | false | undefined
  readonly admissionTimeoutMs?: number | undefined
  /** Worker identity recorded for in-process executions. */
  readonly worker?: string | undefined
}

/** The configuration cannot work; `detail` says which part and why. */
export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid governance configuration: ${this.detail}`
  }
}

/** Result of {@link Governance.admit}. */
export type AdmitResult =
  | {
      readonly ok: true
      readonly envelope: ExecutionEnvelope
      readonly reasonCodes: ReadonlyArray<ReasonCode>
      readonly cached?: Admitted["cached"]
    }
  | {
      readonly ok: false
      readonly error: AdmissionError
      readonly reasonCodes: ReadonlyArray<ReasonCode>
      /** The recorded denied envelope (absent when nothing could be recorded or the request was invalid). */
      readonly envelope?: ExecutionEnvelope
    }

/** Result of {@link Governance.dispatch}. */
export type DispatchResult =
  { readonly ok: true; readonly dispatched: Dispatched } | { readonly ok: false; readonly error: DispatchError }

/** Result of {@link Governance.complete}. */
export type CompleteResult =
  | { readonly ok: true; readonly record: LedgerRecord }
  | { readonly ok: false; readonly error: LedgerUnavailable | Canonical.CanonicalizationError }

/** Result of {@link Governance.execute}. */
export type ExecuteResult<A> =
  | { readonly ok: true; readonly output: A; readonly cached: boolean }
  | {
      readonly ok: false
      readonly error: DispatchError | PoolUnavailable | Canonical.CanonicalizationError | TaskFailed
    }

/** The task given to {@link Governance.execute} rejected; its outcome is recorded as failed. */
export class TaskFailed extends Schema.TaggedError<TaskFailed>()("TaskFailed", {
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `the task failed: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

/** A governance instance. */
export interface Governance {
  /** Admits a request (see `Admission.admit`). */
  admit(request: AdmissionRequestInput): Promise<AdmitResult>
  /** Re-verifies an admitted envelope and uses its single-use grant (a worker passes the pool it serves). */
  dispatch(envelope: ExecutionEnvelope, expected?: DispatchExpectation): Promise<DispatchResult>
  /** Records an execution outcome. */
  complete(envelope: ExecutionEnvelope, outcome: ExecutionOutcome): Promise<CompleteResult>
  /** Dispatches, runs `task` in the tier's pool (or serves the cached output) and records the outcome. */
  execute<A>(
    admitted: { readonly envelope: ExecutionEnvelope; readonly cached?: Admitted["cached"] },
    task: (envelope: ExecutionEnvelope) => Promise<A>
  ): Promise<ExecuteResult<A>>
  /** Verifies the ledger chain and its checkpoints. */
  verifyLedger(options?: VerifyOptions): Promise<VerifyReport>
  /** The sealed envelope with this id, as stored. */
  envelope(id: string): Promise<StoredEnvelope | undefined>
  /** Up to `limit` stored ledger records from index `from`, as stored (see `Ledger.read`). */
  records(from: number, limit: number): Promise<ReadonlyArray<StoredRecord>>
  /** The ledger's current size and head hash. */
  head(): Promise<Head>
  /** The policy snapshot in force. */
  policySnapshot(): Promise<PolicySnapshot>
  /** The public key that verifies checkpoint and policy signatures. */
  readonly publicKeyPem: string
  /** The runtime, for Effect callers that want the services directly. */
  readonly runtime: ManagedRuntime.ManagedRuntime<Services, unknown>
  /** Flushes the ledger (a final signed checkpoint) and releases every resource. */
  close(): Promise<void>
}

/** Services the runtime provides. */
export type Services =
  | Admission
  | Ledger
  | PolicyEngine
  | Sealer
  | Attestor
  | DeterminismEngine
  | IsolationRouter
  | Classifier
  | CapabilityGuard

const positive = (name: string, v: unknown): string | undefined =>
  v === undefined || (typeof v === "number" && Number.isFinite(v) && v > 0)
    ? undefined
    : `${name} must be a positive number`

const checkConfig = (config: GovernanceConfig): string | undefined => {
  if (typeof config !== "object" || config === null) return "the configuration must be an object"
  if (config.registry === undefined) return "registry is required"
  if (config.policy === undefined) return "policy is required"
  const l = config.ledger
  if (
    l !== undefined &&
    l !== "memory" &&
    !(
      typeof l === "object" &&
      l !== null &&
      ("file" in l ? typeof l.file === "string" && l.file.length > 0 : "storage" in l)
    )
  ) {
    return `ledger must be "memory", { file } or { storage }`
  }
  return (
    positive("admissionTimeoutMs", config.admissionTimeoutMs) ??
    positive("cache.ttlMs", config.cache?.ttlMs) ??
    (config.cache !== undefined && "max" in config.cache ? positive("cache.max", config.cache.max) : undefined) ??
    positive("ledgerOptions.checkpointEvery", config.ledgerOptions?.checkpointEvery) ??
    positive("ledgerOptions.appendTimeoutMs", config.ledgerOptions?.appendTimeoutMs)
  )
}

/** Why a governance instance could not start. */
export type StartupError =
  | ConfigInvalid
  | ManifestError
  | RegistryInvalid
  | SealerUnavailable
  | PolicyInvalid
  | PolicyUnavailable
  | PoolConfigError
  | LedgerUnavailable

/** The layer of every service, from a configuration (for Effect callers composing their own runtime). */
export const layer = (config: GovernanceConfig): Layer.Layer<Services | DecisionLog, StartupError> =>
  Admission.layer({ admissionTimeoutMs: config?.admissionTimeoutMs, worker: config?.worker }).pipe(
    Layer.provideMerge(servicesLayer(config))
  )

/** Every service but the pipeline itself: compose it with `Admission.layer` (or a replacement of one service). */
export const servicesLayer = (
  config: GovernanceConfig
): Layer.Layer<Exclude<Services, Admission> | DecisionLog, StartupError> => {
  const problem = checkConfig(config)
  if (problem !== undefined) return Layer.effect(Sealer, Effect.fail(new ConfigInvalid({ detail: problem }))) as never
  const sealer = Sealer.layer(config.keys ?? {})
  const ledgerConfig = config.ledger ?? "memory"
  const ledger =
    ledgerConfig === "memory"
      ? Ledger.layerMemory(config.ledgerOptions)
      : "file" in ledgerConfig
        ? Ledger.layerStorage(FileLedger.make(ledgerConfig.file), config.ledgerOptions)
        : Ledger.layerStorage(ledgerConfig.storage, config.ledgerOptions)
  const classifier = Classifier.layer(config.registry)
  const policy = PolicyEngine.layer(config.policy)
  const guard = CapabilityGuard.layer(config.grants)
  const attestor = config.runtime === false ? Attestor.layer : Attestor.layerCurrentRuntime(config.runtime)
  const cacheConfig = config.cache ?? {}
  const determinism = DeterminismEngine.layer(
    "store" in cacheConfig
      ? cacheConfig.store
      : lruStore({ max: cacheConfig.max ?? 10_000, ttlMs: cacheConfig.ttlMs ?? 3_600_000 }),
    { ttlMs: cacheConfig.ttlMs, ...("store" in cacheConfig ? {} : { readTimeoutMs: 0 }) }
  )
  const router = IsolationRouter.layer(config.pools)
  const log =
    config.logger === undefined || config.logger === false ? DecisionLog.layerSilent : DecisionLog.layer(config.logger)
  const base = Layer.mergeAll(sealer, classifier)
  return Layer.mergeAll(ledger, policy, guard, attestor, determinism, router, log).pipe(Layer.provideMerge(base))
}

const failureOf = <E>(exit: Exit.Failure<unknown, E>): E | undefined => {
  const f = exit.cause.reasons.find((r) => r._tag === "Fail")
  return f !== undefined && f._tag === "Fail" ? (f.error as E) : undefined
}

/** Turns an exit into a result: failures become `{ ok: false, error }`, defects reject (a bug, not an outcome). */
const settle = async <A, E, R>(promise: Promise<Exit.Exit<A, E>>, ok: (a: A) => R, fail: (e: E) => R): Promise<R> => {
  const exit = await promise
  if (Exit.isSuccess(exit)) return ok(exit.value)
  const error = failureOf(exit)
  if (error !== undefined) return fail(error)
  throw Cause.squash(exit.cause)
}

/**
 * Builds a governance instance: validates the configuration, starts every service, signs and records the policy
 * snapshot. Rejects with `ConfigInvalid`, `RegistryInvalid`, `PolicyInvalid`, `SealerUnavailable` or
 * `LedgerUnavailable` when the configuration cannot work.
 */
export const createGovernance = async (config: GovernanceConfig): Promise<Governance> => {
  const runtime = ManagedRuntime.make(layer(config))
  const boot = await runtime.runPromiseExit(
    Effect.gen(function* () {
      const policy = yield* PolicyEngine
      const ledger = yield* Ledger
      const sealer = yield* Sealer
      const snapshot = yield* policy.current
      yield* recordPolicy(ledger, snapshot)
      return sealer.publicKeyPem
    })
  )
  if (Exit.isFailure(boot)) {
    await runtime.dispose()
    throw failureOf(boot) ?? Cause.squash(boot.cause)
  }
  const publicKeyPem = boot.value
  // The layer is built (boot succeeded), so its startup errors cannot surface any more.
  const run = <A, E>(effect: Effect.Effect<A, E, Services>) =>
    runtime.runPromiseExit(effect) as Promise<Exit.Exit<A, E>>

  return {
    publicKeyPem,
    runtime: runtime as ManagedRuntime.ManagedRuntime<Services, unknown>,
    admit: (request) =>
      settle(
        run(Admission.use((a) => a.admit(request))),
        (admitted): AdmitResult =>
          admitted.cached !== undefined
            ? {
                ok: true,
                envelope: admitted.envelope,
                reasonCodes: admitted.envelope.decision.reasonCodes,
                cached: admitted.cached
              }
            : { ok: true, envelope: admitted.envelope, reasonCodes: admitted.envelope.decision.reasonCodes },
        (error): AdmitResult =>
          error._tag === "Denied"
            ? { ok: false, error, reasonCodes: error.reasonCodes, envelope: error.envelope }
            : {
                ok: false,
                error,
                reasonCodes: [
                  error._tag === "InvalidRequest"
                    ? "INVALID_REQUEST"
                    : error._tag === "LedgerUnavailable"
                      ? "LEDGER_UNAVAILABLE"
                      : "SEALER_UNAVAILABLE"
                ]
              }
      ),
    dispatch: (envelope, expected) =>
      settle(
        run(Admission.use((a) => a.dispatch(envelope, expected))),
        (dispatched): DispatchResult => ({ ok: true, dispatched }),
        (error): DispatchResult => ({ ok: false, error })
      ),
    complete: (envelope, outcome) =>
      settle(
        run(Admission.use((a) => a.complete(envelope, outcome))),
        (record): CompleteResult => ({ ok: true, record }),
        (error): CompleteResult => ({ ok: false, error })
      ),
    execute: <A>(
      admitted: { readonly envelope: ExecutionEnvelope; readonly cached?: Admitted["cached"] },
      task: (envelope: ExecutionEnvelope) => Promise<A>
    ) =>
      settle(
        run(
          Admission.use((a) =>
            a.execute(
              admitted.cached !== undefined
                ? { _tag: "Admitted", envelope: admitted.envelope, cached: admitted.cached }
                : { _tag: "Admitted", envelope: admitted.envelope },
              (envelope) =>
                Effect.tryPromise({ try: () => task(envelope), catch: (cause) => new TaskFailed({ cause }) })
            )
          )
        ),
        (output): ExecuteResult<A> => ({ ok: true, output, cached: admitted.cached !== undefined }),
        (error): ExecuteResult<A> => ({ ok: false, error })
      ),
    verifyLedger: (options) => runtime.runPromise(Ledger.use((l) => l.verify(options))),
    envelope: (id) => runtime.runPromise(Ledger.use((l) => l.findEnvelope(id))),
    records: (from, limit) => runtime.runPromise(Ledger.use((l) => l.read(from, limit))),
    head: () => runtime.runPromise(Ledger.use((l) => l.head)),
    policySnapshot: () => runtime.runPromise(PolicyEngine.use((p) => p.current)),
    close: () => runtime.dispose()
  }
}

/** Records a policy snapshot in the ledger once (a restart with the same policy adds nothing). */
export const recordPolicy = (
  ledger: Ledger["Service"],
  snapshot: PolicySnapshot
): Effect.Effect<void, LedgerUnavailable> =>
  Effect.gen(function* () {
    const existing = yield* ledger.history(snapshot.id)
    if (existing.some((r) => r.kind === "policy")) return
    const body = Canonical.toCanonicalJsonSync({
      snapshotId: snapshot.id,
      version: snapshot.version,
      keyId: snapshot.keyId,
      signature: snapshot.signature,
      signedAt: snapshot.signedAt,
      policy: snapshot.policy
    })
    yield* ledger.append({ kind: "policy", at: snapshot.signedAt, ref: snapshot.id, body, digest: sha256Hex(body) })
  })
