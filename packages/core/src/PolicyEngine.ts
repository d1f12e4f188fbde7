/**
 * Policy as data (SPEC §5): Schema-validated rules, content-addressed and signed once per version.
 *
 * A policy is an ordered list of rules. `deny` rules that match end the admission (`POLICY_DENY`; deny overrides
 * allow). `require` rules add required capabilities in a context (e.g. "a deployment to prod needs
 * `admin.mutate`", which lifts it to tier 3 and so demands an approved escalation). `allow` rules grant: a tier
 * ceiling, a capability set, per-resource caps (deny or clamp), the escalation reasons they approve and the grant TTL;
 * the first allow rule that can carry the request wins, so order is priority.
 *
 * The policy snapshot id is the SHA-256 of the policy's RFC 8785 canonical form. Invalid policy is rejected at load
 * with a {@link PolicyInvalid} whose message names the rule.
 *
 * @example
 * ```ts
 * const policy: PolicyEngine.PolicyInput = {
 *   version: "2026-11-01",
 *   rules: [
 *     { id: "viewers-cannot-deploy", effect: "deny", match: { roles: ["viewer"] } },
 *     { id: "engineers-dev", effect: "allow", match: { roles: ["ml-engineer"], environments: ["dev", "staging"] },
 *       tier: 2, resources: { gpus: { max: 4, onExceed: "deny" }, replicas: { max: 4, onExceed: "clamp" } } }
 *   ]
 * }
 * ```
 * @module
 */
import { Context, Effect, Layer, Schema } from "effect"
import { DriftPolicy } from "./Attestor.ts"
import * as Canonical from "./Canonical.ts"
import { CapabilityName } from "./Capability.ts"
import { Classifier, type Classification } from "./Classifier.ts"
import { Environment, PrincipalKind, type Resources, type Scope, type Subject } from "./Envelope.ts"
import { ExecutionClass, Tier } from "./ExecutionClass.ts"
import { formatSchemaError } from "./internal/schemaError.ts"
import { sha256Hex } from "./internal/hash.ts"
import { EscalationReason } from "./ReasonCode.ts"
import { Sealer, verifySignature } from "./Sealer.ts"

const Name = Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(256)))
const NameList = Schema.Array(Name).pipe(Schema.check(Schema.isMinLength(1)))

/** Bounds on a numeric resource for a rule to match. */
export const ResourceRange = Schema.Struct({
  min: Schema.optionalKey(Schema.Finite),
  max: Schema.optionalKey(Schema.Finite)
})

/** What a rule matches on; every present field must match, an absent field matches anything. */
export const Match = Schema.Struct({
  classes: Schema.optionalKey(Schema.Array(ExecutionClass).pipe(Schema.check(Schema.isMinLength(1)))),
  tools: Schema.optionalKey(NameList),
  /** Qualified actions, `tool.action`. */
  actions: Schema.optionalKey(NameList),
  principalKinds: Schema.optionalKey(Schema.Array(PrincipalKind).pipe(Schema.check(Schema.isMinLength(1)))),
  /** Matches when the subject holds any of these roles. */
  roles: Schema.optionalKey(NameList),
  tenants: Schema.optionalKey(NameList),
  environments: Schema.optionalKey(Schema.Array(Environment).pipe(Schema.check(Schema.isMinLength(1)))),
  dataClassifications: Schema.optionalKey(NameList),
  projects: Schema.optionalKey(NameList),
  regions: Schema.optionalKey(NameList),
  /** Matches only requests that carry one of these escalation reasons. */
  escalationReasons: Schema.optionalKey(Schema.Array(EscalationReason).pipe(Schema.check(Schema.isMinLength(1)))),
  resources: Schema.optionalKey(Schema.Record(Name, ResourceRange))
})
/** @see Match */
export type Match = typeof Match.Type

/** A cap on a numeric resource: beyond `max` the request is denied or clamped to `max`. */
export const ResourceCap = Schema.Struct({
  max: Schema.Finite,
  onExceed: Schema.Literals(["deny", "clamp"])
})
/** @see ResourceCap */
export type ResourceCap = typeof ResourceCap.Type

/** One policy rule. */
export const Rule = Schema.Struct({
  id: Schema.String.pipe(
    Schema.check(Schema.isPattern(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, { expected: "a rule id" }))
  ),
  description: Schema.optionalKey(Schema.String),
  effect: Schema.Literals(["allow", "deny", "require"]),
  match: Schema.optionalKey(Match),
  /** allow: the tier ceiling the rule approves (default: the action's baseline tier). */
  tier: Schema.optionalKey(Tier),
  /** allow: capabilities the rule grants (default: every capability required); require: capabilities required. */
  capabilities: Schema.optionalKey(Schema.Array(CapabilityName)),
  /** allow: per-resource caps. */
  resources: Schema.optionalKey(Schema.Record(Name, ResourceCap)),
  /** allow: escalation reasons this rule approves. */
  escalation: Schema.optionalKey(
    Schema.Struct({ approve: Schema.Array(EscalationReason).pipe(Schema.check(Schema.isMinLength(1))) })
  ),
  /** allow: lifetime of the grant (single use, always). */
  grant: Schema.optionalKey(
    Schema.Struct({ ttlSeconds: Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 86_400 }))) })
  )
})
/** @see Rule */
export type Rule = typeof Rule.Type

/** A policy document. */
export const Policy = Schema.Struct({
  version: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(128))),
  description: Schema.optionalKey(Schema.String),
  /** Incident mode: allow routing to a higher-tier pool when the tier's own pool is unavailable (recorded). */
  crossTierFallback: Schema.optionalKey(Schema.Boolean),
  /** Default grant lifetime (default 300 s; escalated grants default to 60 s). */
  grantTtlSeconds: Schema.optionalKey(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 86_400 })))),
  /** Runtime drift budgets (default `Attestor.defaultDriftPolicy`). */
  drift: Schema.optionalKey(DriftPolicy),
  rules: Schema.Array(Rule)
})
/** @see Policy */
export type Policy = typeof Policy.Type
/** What callers pass. */
export type PolicyInput = typeof Policy.Encoded

/** The policy failed validation; the message names the rule. */
export class PolicyInvalid extends Schema.TaggedError<PolicyInvalid>()("PolicyInvalid", {
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid policy: ${this.detail}`
  }
}

/** The policy engine could not answer (`POLICY_UNAVAILABLE`); nothing is admitted. */
export class PolicyUnavailable extends Schema.TaggedError<PolicyUnavailable>()("PolicyUnavailable", {
  detail: Schema.String
}) {
  /** Reason code of this denial. */
  readonly code = "POLICY_UNAVAILABLE" as const
  override get message(): string {
    return this.detail
  }
}

/** A loaded policy version: content address and signature. */
export interface PolicySnapshot {
  /** SHA-256 of the canonical policy. */
  readonly id: string
  readonly version: string
  /** Canonical JSON text of the policy. */
  readonly canonical: string
  readonly policy: Policy
  /** Ed25519 signature over {@link policyMessage}. */
  readonly signature: string
  readonly keyId: string
  readonly signedAt: string
}

/** The message a policy snapshot signature covers. */
export const policyMessage = (snapshotId: string, version: string): string => `egl-policy/v1\n${snapshotId}\n${version}`

/** A policy snapshot as the ledger records it (the body of a `policy` record). */
export interface RecordedSnapshot {
  readonly snapshotId: string
  readonly version: string
  readonly signature: string
  readonly policy: unknown
}

/**
 * Verifies a recorded policy snapshot with only the public key: the id is the SHA-256 of the policy's canonical form,
 * and the signature covers that id and the version. Never throws.
 */
export const verifySnapshot = (publicKeyPem: string, recorded: RecordedSnapshot): boolean => {
  const canonical = Canonical.toCanonicalJsonOrError(recorded.policy)
  return (
    typeof canonical === "string" &&
    sha256Hex(canonical) === recorded.snapshotId &&
    verifySignature(publicKeyPem, policyMessage(recorded.snapshotId, recorded.version), recorded.signature)
  )
}

/** A compiled allow rule. */
export interface AllowRule {
  readonly id: string
  readonly tier: Tier | undefined
  readonly capabilities: ReadonlySet<string> | undefined
  readonly resources: Readonly<Record<string, ResourceCap>> | undefined
  readonly approves: ReadonlySet<string>
  readonly ttlSeconds: number | undefined
}

/** What the policy says about one request, for the capability guard to decide on. */
export interface PolicyMatch {
  readonly snapshotId: string
  /** Matching deny rules (non-empty means denied). */
  readonly denyRules: ReadonlyArray<string>
  /** Capabilities required by matching require rules, and the rules. */
  readonly required: ReadonlyArray<string>
  readonly requireRules: ReadonlyArray<string>
  /** Matching allow rules, in priority order. */
  readonly allows: ReadonlyArray<AllowRule>
  readonly defaultTtlSeconds: number
  readonly crossTierFallback: boolean
}

/** What a rule is matched against. */
export interface MatchContext {
  readonly classification: Classification
  readonly subject: Subject
  readonly scope: Scope
  readonly resources: Resources
  readonly escalationReason?: string | undefined
}

/** Decodes and checks a policy: schema, unique rule ids, fields that fit the rule's effect, known capabilities. */
export const decode = (
  input: unknown,
  knownCapability: (name: string) => boolean = () => true
): Effect.Effect<Policy, PolicyInvalid> =>
  Effect.gen(function* () {
    const policy = yield* Schema.decodeUnknownEffect(Policy)(input).pipe(
      Effect.mapError((e) => new PolicyInvalid({ detail: formatSchemaError(e, input, "rules", "id") }))
    )
    const ids = new Set<string>()
    for (const rule of policy.rules) {
      const fail = (detail: string) => Effect.fail(new PolicyInvalid({ detail: `rule "${rule.id}": ${detail}` }))
      if (ids.has(rule.id)) return yield* fail("the id is used by another rule")
      ids.add(rule.id)
      if (rule.effect !== "allow") {
        for (const field of ["tier", "resources", "escalation", "grant"] as const) {
          if (rule[field] !== undefined) return yield* fail(`"${field}" only applies to allow rules`)
        }
      }
      if (rule.effect === "deny" && rule.capabilities !== undefined)
        return yield* fail(`"capabilities" does not apply to deny rules`)
      if (rule.effect === "require" && (rule.capabilities === undefined || rule.capabilities.length === 0)) {
        return yield* fail(`a require rule must list the capabilities it requires`)
      }
      for (const c of rule.capabilities ?? []) {
        if (!knownCapability(c)) return yield* fail(`capability "${c}" is not in the capability catalog`)
      }
      for (const [name, range] of Object.entries(rule.match?.resources ?? {})) {
        if (range.min !== undefined && range.max !== undefined && range.min > range.max) {
          return yield* fail(`resource range "${name}" has min above max`)
        }
      }
    }
    return policy
  })

/** Snapshot id and canonical text of a decoded policy. */
export const snapshotOf = (policy: Policy): { readonly id: string; readonly canonical: string } => {
  const canonical = Canonical.toCanonicalJsonSync(policy)
  return { id: sha256Hex(canonical), canonical }
}

type Predicate = (ctx: MatchContext) => boolean

const compileMatch = (m: Match | undefined): Predicate => {
  if (m === undefined) return () => true
  const checks: Array<Predicate> = []
  const set = <T>(xs: ReadonlyArray<T> | undefined) => (xs === undefined ? undefined : new Set<T>(xs))
  const classes = set(m.classes)
  if (classes) checks.push((c) => classes.has(c.classification.executionClass))
  const tools = set(m.tools)
  if (tools) checks.push((c) => tools.has(c.classification.tool))
  const actions = set(m.actions)
  if (actions) checks.push((c) => actions.has(`${c.classification.tool}.${c.classification.action}`))
  const kinds = set(m.principalKinds)
  if (kinds) checks.push((c) => kinds.has(c.subject.kind))
  const roles = set(m.roles)
  if (roles) checks.push((c) => c.subject.roles.some((r) => roles.has(r)))
  const tenants = set(m.tenants)
  if (tenants) checks.push((c) => c.subject.tenant !== undefined && tenants.has(c.subject.tenant))
  const envs = set(m.environments)
  if (envs) checks.push((c) => envs.has(c.scope.environment))
  const dcs = set(m.dataClassifications)
  if (dcs) checks.push((c) => c.scope.dataClassification !== undefined && dcs.has(c.scope.dataClassification))
  const projects = set(m.projects)
  if (projects) checks.push((c) => c.scope.project !== undefined && projects.has(c.scope.project))
  const regions = set(m.regions)
  if (regions) checks.push((c) => c.scope.region !== undefined && regions.has(c.scope.region))
  const reasons = set(m.escalationReasons)
  if (reasons) checks.push((c) => c.escalationReason !== undefined && reasons.has(c.escalationReason))
  for (const [name, range] of Object.entries(m.resources ?? {})) {
    checks.push((c) => {
      const v = Object.hasOwn(c.resources, name) ? c.resources[name] : undefined
      return (
        typeof v === "number" &&
        (range.min === undefined || v >= range.min) &&
        (range.max === undefined || v <= range.max)
      )
    })
  }
  if (checks.length === 0) return () => true
  return (c) => {
    for (const check of checks) if (!check(c)) return false
    return true
  }
}

interface Compiled {
  readonly snapshot: PolicySnapshot
  readonly match: (ctx: MatchContext) => PolicyMatch
}

const compile = (snapshot: PolicySnapshot): Compiled => {
  const policy = snapshot.policy
  const defaultTtlSeconds = policy.grantTtlSeconds ?? 300
  const crossTierFallback = policy.crossTierFallback ?? false
  const rules = policy.rules.map((rule) => ({
    rule,
    test: compileMatch(rule.match),
    namesTools: new Set(rule.match?.tools ?? []),
    allow:
      rule.effect === "allow"
        ? ({
            id: rule.id,
            tier: rule.tier,
            capabilities: rule.capabilities === undefined ? undefined : new Set(rule.capabilities),
            resources: rule.resources,
            approves: new Set(rule.escalation?.approve ?? []),
            ttlSeconds: rule.grant?.ttlSeconds
          } satisfies AllowRule)
        : undefined
  }))
  const none: ReadonlyArray<string> = []
  return {
    snapshot,
    match: (ctx) => {
      let denyRules: Array<string> | undefined
      let required: Array<string> | undefined
      let requireRules: Array<string> | undefined
      const allows: Array<AllowRule> = []
      const restricted = ctx.classification.stage === "restricted"
      for (const r of rules) {
        if (!r.test(ctx)) continue
        switch (r.rule.effect) {
          case "deny":
            ;(denyRules ??= []).push(r.rule.id)
            break
          case "require":
            ;(requireRules ??= []).push(r.rule.id)
            for (const c of r.rule.capabilities!) if (!(required ??= []).includes(c)) required.push(c)
            break
          case "allow":
            // A restricted tool is admitted only through a rule that names it.
            if (!restricted || r.namesTools.has(ctx.classification.tool)) allows.push(r.allow!)
        }
      }
      return {
        snapshotId: snapshot.id,
        denyRules: denyRules ?? none,
        required: required ?? none,
        requireRules: requireRules ?? none,
        allows,
        defaultTtlSeconds,
        crossTierFallback
      }
    }
  }
}

/** The policy engine service. */
export class PolicyEngine extends Context.Service<
  PolicyEngine,
  {
    /** The policy version in force. */
    readonly current: Effect.Effect<PolicySnapshot>
    /** Evaluates the rules against one request. */
    match(ctx: MatchContext): Effect.Effect<PolicyMatch, PolicyUnavailable>
    /** Validates, signs and installs a new policy version; its snapshot id is new when its content is. */
    update(input: unknown): Effect.Effect<PolicySnapshot, PolicyInvalid | PolicyUnavailable>
  }
>()("@egl/core/PolicyEngine") {
  /** A policy engine with `input` in force; the policy is validated against the classifier's catalog and signed. */
  static readonly layer = (input: unknown) => Layer.effect(PolicyEngine, make(input))
}

/** Validates and signs a policy, building the engine. */
export const make = (
  input: unknown
): Effect.Effect<PolicyEngine["Service"], PolicyInvalid | PolicyUnavailable, Sealer | Classifier> =>
  Effect.gen(function* () {
    const sealer = yield* Sealer
    const classifier = yield* Classifier
    const load = (raw: unknown) =>
      Effect.gen(function* () {
        const policy = yield* decode(raw, (c) => classifier.capability(c) !== undefined)
        const { id, canonical } = snapshotOf(policy)
        const signature = yield* sealer
          .sign(policyMessage(id, policy.version))
          .pipe(Effect.mapError((e) => new PolicyUnavailable({ detail: `policy signing failed: ${e.detail}` })))
        const snapshot: PolicySnapshot = {
          id,
          version: policy.version,
          canonical,
          policy,
          signature,
          keyId: sealer.keyId,
          signedAt: new Date().toISOString()
        }
        return compile(snapshot)
      })
    let compiled = yield* load(input)
    return PolicyEngine.of({
      current: Effect.sync(() => compiled.snapshot),
      match: (ctx) => Effect.sync(() => compiled.match(ctx)),
      update: (raw) =>
        Effect.map(load(raw), (next) => {
          compiled = next
          return next.snapshot
        })
    })
  })
