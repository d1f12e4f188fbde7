/**
 * Runtime attestation (SPEC §6): which runtime will execute a request, and may it?
 *
 * A runtime is described by a {@link RuntimeManifest} (interpreter and exact version, OS and base image, lockfile
 * digests, tool package digest, adapter version, sandbox profile); its fingerprint is the SHA-256 of the manifest's
 * RFC 8785 form, so two workers share a fingerprint exactly when they run the same runtime. Workers register their
 * manifest per tier; admission then asks {@link Attestor} whether the tier has a worker that matches the request's
 * pinned fingerprint, or one that drifts from it within the class's {@link DriftBudget} (a patch- or minor-level
 * interpreter bump, within a time window after the new runtime first appeared). Anything else is
 * `RUNTIME_DRIFT_BLOCKED`. Privileged and deterministic (`transform`) executions get no drift at all by default: a cached
 * `transform` result is only valid for the exact runtime that produced it.
 *
 * Canary workers serve only non-`prod` environments, so a new fingerprint proves itself before broad rollout, and a
 * quarantined fingerprint (after a policy violation) never serves again.
 *
 * {@link Attestor.attest} runs on every admission, so it is a plain synchronous method over state prepared at
 * registration time (parsed versions, drift keys, prebuilt verdicts); registration is rare and may pay for that.
 * @module
 */
import { readFile } from "node:fs/promises"
import { arch, platform, release } from "node:os"
import { Clock, Context, Effect, Layer, Schema } from "effect"
import * as Canonical from "./Canonical.ts"
import type { Environment } from "./Envelope.ts"
import { ExecutionClass, Tier } from "./ExecutionClass.ts"
import { sha256Hex } from "./internal/hash.ts"

/** A runtime manifest: everything that makes two runtimes execute the same code identically. */
export const RuntimeManifest = Schema.Struct({
  interpreter: Schema.Struct({ name: Schema.String, version: Schema.String }),
  os: Schema.Struct({
    platform: Schema.String,
    arch: Schema.String,
    release: Schema.optionalKey(Schema.String),
    baseImageDigest: Schema.optionalKey(Schema.String)
  }),
  /** Lockfile path → SHA-256 of its bytes. */
  lockfileDigests: Schema.Record(Schema.String, Schema.String),
  toolPackageDigest: Schema.optionalKey(Schema.String),
  adapterVersion: Schema.String,
  sandboxProfile: Schema.String
})
/** @see RuntimeManifest */
export type RuntimeManifest = typeof RuntimeManifest.Type

/** A manifest is invalid, cannot be canonicalized, or a lockfile could not be read. */
export class ManifestError extends Schema.TaggedError<ManifestError>()("ManifestError", {
  reason: Schema.Literals(["invalid", "lockfile-unreadable"]),
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/**
 * The fingerprint of a runtime: SHA-256 (lowercase hex) of the manifest's RFC 8785 form.
 * Throws {@link Canonical.CanonicalizationError} for a manifest JSON cannot carry (e.g. a lone surrogate);
 * {@link Attestor.register} reports that as a {@link ManifestError} instead.
 */
export const fingerprint = (manifest: RuntimeManifest): string => Canonical.digestSync(manifest)

/** Options of {@link currentManifest}. */
export interface CurrentManifestOptions {
  /**
   * Lockfiles to digest, keyed in the manifest by the path as given: pass repository-relative paths so the same
   * runtime yields the same fingerprint on every machine.
   */
  readonly lockfiles?: ReadonlyArray<string> | undefined
  /** Version of the framework adapter in front of the pipeline (default `"none"`). */
  readonly adapterVersion?: string | undefined
  /** Sandbox profile and its version (default `"in-process"`). */
  readonly sandboxProfile?: string | undefined
  /** SHA-256 of the tool package, when the runtime serves a single packaged tool. */
  readonly toolPackageDigest?: string | undefined
}

/**
 * The manifest of the running Node.js process: interpreter version, OS platform / arch / kernel release, and the
 * SHA-256 of each lockfile read from disk (a missing or unreadable lockfile is a {@link ManifestError}).
 */
export const currentManifest = (options?: CurrentManifestOptions): Effect.Effect<RuntimeManifest, ManifestError> =>
  Effect.gen(function* () {
    const lockfileDigests: Record<string, string> = {}
    for (const path of options?.lockfiles ?? []) {
      const bytes = yield* Effect.tryPromise({
        try: () => readFile(path),
        catch: (cause) =>
          new ManifestError({
            reason: "lockfile-unreadable",
            detail: `cannot read lockfile ${path}: ${(cause as Error)?.message ?? String(cause)}`
          })
      })
      lockfileDigests[path] = sha256Hex(bytes)
    }
    const manifest: {
      -readonly [K in keyof RuntimeManifest]: RuntimeManifest[K]
    } = {
      interpreter: { name: "node", version: process.versions.node },
      os: { platform: platform(), arch: arch(), release: release() },
      lockfileDigests,
      adapterVersion: options?.adapterVersion ?? "none",
      sandboxProfile: options?.sandboxProfile ?? "in-process"
    }
    if (options?.toolPackageDigest !== undefined) manifest.toolPackageDigest = options.toolPackageDigest
    return manifest
  })

/** How far a runtime may drift from a pinned one: nothing, patch-level or minor-level interpreter bumps. */
export const DriftAllowance = Schema.Literals(["none", "patch", "minor"])
/** @see DriftAllowance */
export type DriftAllowance = typeof DriftAllowance.Type

/**
 * A drift budget: the drift level allowed, and for how long after the drifted runtime first registered (a rollout
 * window: past it, requests must pin the new fingerprint).
 */
export const DriftBudget = Schema.Struct({
  allow: DriftAllowance,
  windowMs: Schema.Finite.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))
})
/** @see DriftBudget */
export type DriftBudget = typeof DriftBudget.Type

/** Drift budgets: a default, overridden per execution class. */
export const DriftPolicy = Schema.Struct({
  default: DriftBudget,
  byClass: Schema.optionalKey(Schema.Record(ExecutionClass, Schema.optionalKey(DriftBudget)))
})
/** @see DriftPolicy */
export type DriftPolicy = typeof DriftPolicy.Type

/**
 * The default drift policy: patch-level drift within 72 hours; none for `privileged` (blast radius) and `transform`
 * (deterministic, cached results are bound to the exact runtime).
 */
export const defaultDriftPolicy: DriftPolicy = {
  default: { allow: "patch", windowMs: 72 * 60 * 60 * 1000 },
  byClass: {
    privileged: { allow: "none", windowMs: 0 },
    transform: { allow: "none", windowMs: 0 }
  }
}

/** The budget that applies to an execution class under a policy. */
export const budgetFor = (policy: DriftPolicy, executionClass: ExecutionClass): DriftBudget =>
  policy.byClass?.[executionClass] ?? policy.default

/**
 * How far two runtimes differ: `none` (same manifest), `patch` / `minor` (only the interpreter version differs, at that
 * level), or `incompatible` (anything else differs, including the interpreter's major version).
 */
export type DriftLevel = "none" | "patch" | "minor" | "incompatible"

/** Release channel of a worker: canary workers serve only non-`prod` environments. */
export const Channel = Schema.Literals(["stable", "canary"])
/** @see Channel */
export type Channel = typeof Channel.Type

/** A worker registration. */
export const Registration = Schema.Struct({
  workerId: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(256))),
  tier: Tier,
  manifest: RuntimeManifest,
  /** Default `stable`. */
  channel: Schema.optionalKey(Channel)
})
/** @see Registration */
export type Registration = typeof Registration.Type

/** A registered worker as {@link Attestor.workers} reports it. */
export interface WorkerInfo {
  readonly workerId: string
  readonly tier: Tier
  readonly fingerprint: string
  readonly channel: Channel
  /** Epoch milliseconds of the registration. */
  readonly registeredAt: number
  readonly quarantined: boolean
}

/** What a quarantine did: enough for the caller to record an incident. */
export interface Quarantine {
  readonly fingerprint: string
  readonly reason: string
  /** Epoch milliseconds at which the fingerprint was (first) quarantined. */
  readonly at: number
  /** Whether the fingerprint was quarantined before this call (the first reason and time are kept). */
  readonly alreadyQuarantined: boolean
  /** Whether the fingerprint belongs to a registered manifest. */
  readonly known: boolean
  /** Workers that currently run the fingerprint and stop serving. */
  readonly workers: ReadonlyArray<{ readonly workerId: string; readonly tier: Tier }>
}

/** Attestation verdicts. */
export type AttestationVerdict = "exact" | "drift-allowed" | "blocked" | "unattested"

/** Reason codes an attestation may carry. */
export type AttestationCode =
  "RUNTIME_DRIFT_ALLOWED" | "RUNTIME_DRIFT_BLOCKED" | "RUNTIME_UNATTESTED" | "RUNTIME_QUARANTINED"

/** The outcome of {@link Attestor.attest}. */
export interface Attestation {
  readonly verdict: AttestationVerdict
  /** Fingerprint of the worker that would serve the request (absent when no worker is available). */
  readonly fingerprint?: string
  /** Absent on `exact`; a notice on `drift-allowed`, a denial otherwise. */
  readonly code?: AttestationCode
  readonly detail: string
}

/** What {@link Attestor.attest} needs to know about a request. */
export interface AttestInput {
  readonly tier: Tier
  readonly executionClass: ExecutionClass
  readonly environment: Environment
  /** The request's runtime constraint: a pinned fingerprint, if any. */
  readonly constraint?: { readonly fingerprint?: string | undefined } | undefined
  /** Epoch milliseconds (the admission's clock). */
  readonly now: number
  readonly drift: DriftPolicy
}

/** The runtime attestation service. */
export class Attestor extends Context.Service<
  Attestor,
  {
    /**
     * Registers (or re-registers) a worker and returns its fingerprint. The manifest is validated and remembered by
     * fingerprint forever, with the time it was first seen (the start of its drift window).
     */
    register(registration: Registration): Effect.Effect<string, ManifestError>
    /** Removes a worker; `false` when it was not registered. */
    deregister(workerId: string): Effect.Effect<boolean>
    /** Quarantines a fingerprint: no worker running it serves again. Record the result as an incident. */
    quarantine(fingerprint: string, reason: string): Effect.Effect<Quarantine>
    /** Workers registered for a tier, in registration order. */
    workers(tier: Tier): Effect.Effect<ReadonlyArray<WorkerInfo>>
    /** The manifest remembered for a fingerprint, if any. */
    manifest(fingerprint: string): RuntimeManifest | undefined
    /**
     * Which runtime serves a request and whether it may (see the module docs). Synchronous and allocation-light: it
     * runs on every admission.
     *
     * @example
     * ```ts
     * const attestor = yield* Attestor
     * const a = attestor.attest({ tier: 0, executionClass: "transform", environment: "prod", now: Date.now(), drift: defaultDriftPolicy })
     * if (a.verdict === "blocked" || a.verdict === "unattested") deny(a.code)
     * ```
     */
    attest(input: AttestInput): Attestation
  }
>()("@egl/core/Attestor") {
  /** An attestor with no registered workers. */
  static readonly layer: Layer.Layer<Attestor> = Layer.sync(Attestor, () => make())

  /**
   * An attestor with the current process registered as a stable worker (`local-t0` … `local-t3`) for every tier: the
   * in-process default, where every pool runs in this runtime.
   */
  static readonly layerCurrentRuntime = (options?: CurrentManifestOptions): Layer.Layer<Attestor, ManifestError> =>
    Layer.effect(
      Attestor,
      Effect.gen(function* () {
        const attestor = make()
        const manifest = yield* currentManifest(options)
        for (const tier of TIERS) {
          yield* attestor.register({ workerId: `local-t${tier}`, tier, manifest })
        }
        return attestor
      })
    )
}

const TIERS: ReadonlyArray<Tier> = [0, 1, 2, 3]

const ALLOWANCE_RANK: Readonly<Record<DriftAllowance, number>> = { none: 0, patch: 1, minor: 2 }
const LEVEL_RANK: Readonly<Record<DriftLevel, number>> = { none: 0, patch: 1, minor: 2, incompatible: 3 }

/** Interpreter version split as major / minor / patch / rest, or undefined when it is not `x.y.z…`. */
type ParsedVersion = readonly [number, number, number, string] | undefined

const parseVersion = (version: string): ParsedVersion => {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(.*)$/.exec(version)
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3]), m[4]!]
}

/** Digest of everything but the interpreter version: two manifests can only drift if these are equal. */
const driftKeyOf = (manifest: RuntimeManifest): string =>
  Canonical.digestSync({ ...manifest, interpreter: { ...manifest.interpreter, version: "" } })

const levelOf = (
  pinnedKey: string,
  pinned: ParsedVersion,
  pinnedRaw: string,
  workerKey: string,
  worker: ParsedVersion,
  workerRaw: string
): DriftLevel => {
  if (pinnedKey !== workerKey) return "incompatible"
  if (pinnedRaw === workerRaw) return "none"
  if (pinned === undefined || worker === undefined || pinned[0] !== worker[0]) return "incompatible"
  return pinned[1] !== worker[1] ? "minor" : "patch"
}

/**
 * The drift level between a pinned runtime and a worker's runtime (see {@link DriftLevel}). Throws
 * {@link Canonical.CanonicalizationError} for a manifest without a canonical form.
 */
export const driftLevel = (pinned: RuntimeManifest, worker: RuntimeManifest): DriftLevel =>
  levelOf(
    driftKeyOf(pinned),
    parseVersion(pinned.interpreter.version),
    pinned.interpreter.version,
    driftKeyOf(worker),
    parseVersion(worker.interpreter.version),
    worker.interpreter.version
  )

interface Known {
  readonly manifest: RuntimeManifest
  readonly fingerprint: string
  readonly firstSeen: number
  readonly driftKey: string
  readonly version: ParsedVersion
}

interface Worker {
  readonly workerId: string
  readonly tier: Tier
  readonly channel: Channel
  readonly registeredAt: number
  readonly known: Known
  /** The `exact` verdict for this worker, built once. */
  readonly exact: Attestation
}

const decodeRegistration = Schema.decodeUnknownResult(Registration)

const short = (fp: string): string => fp.slice(0, 12)

const make = (): Attestor["Service"] => {
  const known = new Map<string, Known>()
  const workersById = new Map<string, Worker>()
  /** Per tier, in registration order; replaced (never mutated) on change so `attest` iterates a stable array. */
  const byTier: Array<ReadonlyArray<Worker>> = [[], [], [], []]
  const quarantined = new Map<string, { readonly reason: string; readonly at: number }>()

  const unattested: ReadonlyArray<Attestation> = TIERS.map((tier) =>
    Object.freeze({
      verdict: "unattested",
      code: "RUNTIME_UNATTESTED",
      detail: `no attested worker available for tier ${tier}`
    } as const)
  )
  const allQuarantined: ReadonlyArray<Attestation> = TIERS.map((tier) =>
    Object.freeze({
      verdict: "unattested",
      code: "RUNTIME_QUARANTINED",
      detail: `every worker of tier ${tier} runs a quarantined fingerprint`
    } as const)
  )

  const rebuild = (tier: Tier) => {
    byTier[tier] = [...workersById.values()].filter((w) => w.tier === tier)
  }

  const register = (registration: Registration): Effect.Effect<string, ManifestError> =>
    Clock.clockWith((clock) => {
      const decoded = decodeRegistration(registration)
      if (decoded._tag === "Failure") {
        return Effect.fail(
          new ManifestError({ reason: "invalid", detail: `invalid worker registration: ${decoded.failure.message}` })
        )
      }
      const { workerId, tier, manifest, channel = "stable" } = decoded.success
      const text = Canonical.toCanonicalJsonOrError(manifest)
      if (typeof text !== "string") return Effect.fail(new ManifestError({ reason: "invalid", detail: text.message }))
      const fp = sha256Hex(text)
      const now = clock.currentTimeMillisUnsafe()
      let k = known.get(fp)
      if (k === undefined) {
        k = {
          manifest,
          fingerprint: fp,
          firstSeen: now,
          driftKey: driftKeyOf(manifest),
          version: parseVersion(manifest.interpreter.version)
        }
        known.set(fp, k)
      }
      const previous = workersById.get(workerId)
      const exact: Attestation = Object.freeze({
        verdict: "exact",
        fingerprint: fp,
        detail: `runtime ${short(fp)} on worker ${workerId} (${channel})`
      })
      // Delete first so a re-registration moves to the end of the registration order.
      workersById.delete(workerId)
      workersById.set(workerId, { workerId, tier, channel, registeredAt: now, known: k, exact })
      if (previous !== undefined && previous.tier !== tier) rebuild(previous.tier)
      rebuild(tier)
      return Effect.succeed(fp)
    })

  const deregister = (workerId: string): Effect.Effect<boolean> =>
    Effect.sync(() => {
      const w = workersById.get(workerId)
      if (w === undefined) return false
      workersById.delete(workerId)
      rebuild(w.tier)
      return true
    })

  const quarantine = (fp: string, reason: string): Effect.Effect<Quarantine> =>
    Clock.clockWith((clock) =>
      Effect.sync(() => {
        const existing = quarantined.get(fp)
        const record = existing ?? { reason, at: clock.currentTimeMillisUnsafe() }
        if (existing === undefined) quarantined.set(fp, record)
        const affected: Array<{ workerId: string; tier: Tier }> = []
        for (const w of workersById.values())
          if (w.known.fingerprint === fp) affected.push({ workerId: w.workerId, tier: w.tier })
        return {
          fingerprint: fp,
          reason: record.reason,
          at: record.at,
          alreadyQuarantined: existing !== undefined,
          known: known.has(fp),
          workers: affected
        }
      })
    )

  const workers = (tier: Tier): Effect.Effect<ReadonlyArray<WorkerInfo>> =>
    Effect.sync(() =>
      (byTier[tier] ?? []).map((w) => ({
        workerId: w.workerId,
        tier: w.tier,
        fingerprint: w.known.fingerprint,
        channel: w.channel,
        registeredAt: w.registeredAt,
        quarantined: quarantined.has(w.known.fingerprint)
      }))
    )

  const attest = (input: AttestInput): Attestation => {
    const tier = input.tier
    const list = byTier[tier] ?? []
    const prod = input.environment === "prod"
    const pinned = input.constraint?.fingerprint
    let firstStable: Worker | undefined
    let firstCandidate: Worker | undefined
    let quarantinedCount = 0
    for (let i = 0; i < list.length; i++) {
      const w = list[i]!
      if (quarantined.has(w.known.fingerprint)) {
        quarantinedCount++
        continue
      }
      if (w.channel === "canary" && prod) continue
      if (pinned !== undefined && w.known.fingerprint === pinned) return w.exact
      if (firstCandidate === undefined) firstCandidate = w
      if (firstStable === undefined && w.channel === "stable") {
        firstStable = w
        if (pinned === undefined) break
      }
    }
    // Prefer a stable worker; a canary one serves only when it is all a non-prod environment has.
    const chosen = firstStable ?? firstCandidate
    if (chosen === undefined) {
      return list.length > 0 && quarantinedCount === list.length ? allQuarantined[tier]! : unattested[tier]!
    }
    if (pinned === undefined) return chosen.exact

    const workerFp = chosen.known.fingerprint
    const pin = known.get(pinned)
    if (pin === undefined) {
      return {
        verdict: "blocked",
        fingerprint: workerFp,
        code: "RUNTIME_DRIFT_BLOCKED",
        detail: `pinned runtime ${short(pinned)} is unknown; tier ${tier} runs ${short(workerFp)}`
      }
    }
    const w = chosen.known
    const level = levelOf(
      pin.driftKey,
      pin.version,
      pin.manifest.interpreter.version,
      w.driftKey,
      w.version,
      w.manifest.interpreter.version
    )
    const budget = budgetFor(input.drift, input.executionClass)
    const age = input.now - w.firstSeen
    const withinLevel = LEVEL_RANK[level] <= ALLOWANCE_RANK[budget.allow]
    const withinWindow = age <= budget.windowMs
    const what =
      level === "incompatible"
        ? "an incompatible runtime"
        : `${level}-level drift (${pin.manifest.interpreter.version} → ${w.manifest.interpreter.version})`
    if (withinLevel && withinWindow) {
      return {
        verdict: "drift-allowed",
        fingerprint: workerFp,
        code: "RUNTIME_DRIFT_ALLOWED",
        detail: `pinned ${short(pinned)}, serving ${short(workerFp)}: ${what} within the ${input.executionClass} budget`
      }
    }
    const why = withinLevel
      ? `runtime first seen ${age} ms ago, outside the ${budget.windowMs} ms window`
      : `the ${input.executionClass} budget allows ${budget.allow === "none" ? "no" : budget.allow + "-level"} drift`
    return {
      verdict: "blocked",
      fingerprint: workerFp,
      code: "RUNTIME_DRIFT_BLOCKED",
      detail: `pinned ${short(pinned)}, tier ${tier} runs ${short(workerFp)}: ${what}; ${why}`
    }
  }

  return Attestor.of({
    register,
    deregister,
    quarantine,
    workers,
    manifest: (fp) => known.get(fp)?.manifest,
    attest
  })
}
