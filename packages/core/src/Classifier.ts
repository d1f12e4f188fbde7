/**
 * The execution classifier (seed 002 §1.4): maps a tool action to its execution class, baseline tier, required
 * capabilities, cacheability and lifecycle stage.
 *
 * The registry is data, validated at load; an unknown tool or action is a typed denial ({@link ClassUnknown},
 * `CLASS_UNKNOWN`), never a default-allow. Required capabilities are the action's declared set plus those its input
 * descriptors derive from the request input plus any the caller asked for; each must be in the capability catalog.
 *
 * @example
 * ```ts
 * const registry: Classifier.RegistryInput = {
 *   tools: [{ tool: "serving", version: "1.4.0", stage: "active",
 *     actions: { deploy_model: { class: "ai", capabilities: ["ai.inference"] } } }]
 * }
 * const layer = Classifier.Classifier.layer(registry)
 * ```
 * @module
 */
import { Context, Effect, Layer, Schema } from "effect"
import { CapabilityCatalog, CapabilityName, defaultCatalog, type CapabilitySpec } from "./Capability.ts"
import { defaultClassProfiles, ExecutionClass, maxTier, Tier, type ClassProfile } from "./ExecutionClass.ts"
import * as Envelope from "./Envelope.ts"
import { decision } from "./internal/decision.ts"
import { formatSchemaError } from "./internal/schemaError.ts"

/** Lifecycle stage of a tool (SPEC §10). */
export const ToolStage = Schema.Literals(["draft", "review", "canary", "active", "restricted", "deprecated", "retired"])
/** @see ToolStage */
export type ToolStage = typeof ToolStage.Type

/** Stages that admit new executions; `restricted` only through a rule that names the tool. */
export const admittingStages: ReadonlySet<ToolStage> = new Set(["canary", "active", "restricted"])

const Slug = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[a-z][a-z0-9_-]{0,63}$/, { expected: "a lowercase slug" }))
)

/** Derives a required capability from the request input: when `path` is present (or truthy) in the input. */
export const InputDescriptor = Schema.Struct({
  /** Dot path into the input, e.g. `source.url`. */
  path: Schema.String.pipe(Schema.check(Schema.isPattern(/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/))),
  capability: CapabilityName,
  when: Schema.optionalKey(Schema.Literals(["present", "truthy"]))
})
/** @see InputDescriptor */
export type InputDescriptor = typeof InputDescriptor.Type

/** One action of a tool. */
export const ActionDefinition = Schema.Struct({
  class: ExecutionClass,
  /** Baseline tier; defaults to the class floor and may not be below it. */
  tier: Schema.optionalKey(Tier),
  /** Capabilities every execution of the action needs. */
  capabilities: Schema.optionalKey(Schema.Array(CapabilityName)),
  /** Capabilities derived from the input. */
  descriptors: Schema.optionalKey(Schema.Array(InputDescriptor)),
  /** Overrides the class default for deterministic caching (opt-in for non-transform classes). */
  cacheable: Schema.optionalKey(Schema.Boolean),
  /** Overrides the tool's stage for this action. */
  stage: Schema.optionalKey(ToolStage),
  description: Schema.optionalKey(Schema.String)
})
/** @see ActionDefinition */
export type ActionDefinition = typeof ActionDefinition.Type

/** A registered tool and its actions. */
export const ToolDefinition = Schema.Struct({
  tool: Slug,
  version: Schema.String.pipe(Schema.check(Schema.isMinLength(1))),
  stage: ToolStage,
  actions: Schema.Record(Slug, ActionDefinition),
  description: Schema.optionalKey(Schema.String)
})
/** @see ToolDefinition */
export type ToolDefinition = typeof ToolDefinition.Type

const ClassProfileSchema = Schema.Struct({
  floor: Tier,
  cacheable: Schema.Boolean,
  directJump: Schema.Boolean
})

/** The registry: tools, extra capability catalog entries, class profile overrides. */
export const Registry = Schema.Struct({
  tools: Schema.Array(ToolDefinition),
  capabilities: Schema.optionalKey(CapabilityCatalog),
  classes: Schema.optionalKey(
    Schema.Struct({
      transform: Schema.optionalKey(ClassProfileSchema),
      file: Schema.optionalKey(ClassProfileSchema),
      network: Schema.optionalKey(ClassProfileSchema),
      ai: Schema.optionalKey(ClassProfileSchema),
      privileged: Schema.optionalKey(ClassProfileSchema)
    })
  )
})
/** @see Registry */
export type Registry = typeof Registry.Type
/** What callers pass (same shape as {@link Registry}). */
export type RegistryInput = typeof Registry.Encoded

/** The registry failed validation; `detail` names the tool and action. */
export class RegistryInvalid extends Schema.TaggedError<RegistryInvalid>()("RegistryInvalid", {
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid tool registry: ${this.detail}`
  }
}

/** The tool or action is not registered (`CLASS_UNKNOWN`). */
export class ClassUnknown extends Schema.TaggedError<ClassUnknown>()("ClassUnknown", {
  tool: Schema.String,
  action: Schema.String
}) {
  /** Reason code of this denial. */
  readonly code = "CLASS_UNKNOWN" as const
  override get message(): string {
    return `no execution class is registered for ${this.tool}.${this.action}`
  }
}

/** A requested or derived capability is not in the catalog (`CAPABILITY_UNKNOWN`). */
export class CapabilityUnknown extends Schema.TaggedError<CapabilityUnknown>()("CapabilityUnknown", {
  capability: Schema.String
}) {
  /** Reason code of this denial. */
  readonly code = "CAPABILITY_UNKNOWN" as const
  override get message(): string {
    return `capability "${this.capability}" is not in the capability catalog`
  }
}

/** The tool's lifecycle stage admits no new executions (`TOOL_STAGE_BLOCKED`). */
export class ToolStageBlocked extends Schema.TaggedError<ToolStageBlocked>()("ToolStageBlocked", {
  tool: Schema.String,
  action: Schema.String,
  stage: ToolStage
}) {
  /** Reason code of this denial. */
  readonly code = "TOOL_STAGE_BLOCKED" as const
  override get message(): string {
    return `${this.tool}.${this.action} is in stage "${this.stage}" and admits no new executions`
  }
}

/** Classification of one request. */
export interface Classification {
  readonly tool: string
  readonly toolVersion: string
  readonly action: string
  readonly executionClass: ExecutionClass
  /** The tier the action runs at without escalation. */
  readonly baselineTier: Tier
  /** Highest tier any required capability needs (at least the baseline). */
  readonly capabilityTier: Tier
  readonly stage: ToolStage
  readonly cacheable: boolean
  /** May an escalation jump more than one tier. */
  readonly directJump: boolean
  /** Declared, derived and caller-requested capabilities, deduplicated, sorted. */
  readonly capabilities: ReadonlyArray<string>
}

/** What the classifier looks at. */
export interface ClassifyInput {
  readonly tool: string
  readonly action: string
  readonly input?: unknown
  readonly requestedCapabilities?: ReadonlyArray<string> | undefined
}

interface ResolvedAction {
  readonly tool: string
  readonly toolVersion: string
  readonly action: string
  readonly executionClass: ExecutionClass
  readonly baselineTier: Tier
  readonly stage: ToolStage
  readonly cacheable: boolean
  readonly directJump: boolean
  readonly capabilities: ReadonlyArray<string>
  readonly capabilityTier: Tier
  readonly descriptors: ReadonlyArray<{
    readonly path: ReadonlyArray<string>
    readonly capability: string
    readonly truthy: boolean
  }>
  /** Classification when no descriptor fires and the caller asks for nothing extra (the common case, shared). */
  readonly plain: Classification
}

/** The classifier service. */
export class Classifier extends Context.Service<
  Classifier,
  {
    /** Classifies a request, or denies it. */
    classify(input: ClassifyInput): Effect.Effect<Classification, ClassUnknown | CapabilityUnknown | ToolStageBlocked>
    /** Catalog entry of a capability. */
    capability(name: string): CapabilitySpec | undefined
    /** The merged capability catalog. */
    readonly catalog: CapabilityCatalog
    /** The registered tools. */
    readonly tools: ReadonlyArray<ToolDefinition>
  }
>()("@egl/core/Classifier") {
  /** A classifier over a registry validated once, at layer construction. */
  static readonly layer = (registry: RegistryInput) => Layer.effect(Classifier, make(registry))
}

/** Validates a registry and builds the classifier. */
export const make = (input: RegistryInput): Effect.Effect<Classifier["Service"], RegistryInvalid> =>
  Effect.gen(function* () {
    const registry = yield* Schema.decodeUnknownEffect(Registry)(input).pipe(
      Effect.mapError((e) => new RegistryInvalid({ detail: formatSchemaError(e, input, "tools", "tool") }))
    )
    const catalog: Record<string, CapabilitySpec> = { ...defaultCatalog, ...registry.capabilities }
    const profiles: Record<ExecutionClass, ClassProfile> = { ...defaultClassProfiles, ...registry.classes }
    const actions = new Map<string, ResolvedAction>()
    const seen = new Set<string>()
    for (const tool of registry.tools) {
      if (seen.has(tool.tool)) return yield* new RegistryInvalid({ detail: `tool "${tool.tool}" is registered twice` })
      seen.add(tool.tool)
      for (const [name, def] of Object.entries(tool.actions)) {
        const where = `tool "${tool.tool}" action "${name}"`
        const profile = profiles[def.class]
        const baselineTier = def.tier ?? profile.floor
        if (baselineTier < profile.floor) {
          return yield* new RegistryInvalid({
            detail: `${where}: tier ${baselineTier} is below the floor ${profile.floor} of class "${def.class}"`
          })
        }
        const capabilities = [...new Set(def.capabilities ?? [])].sort()
        let capabilityTier = baselineTier
        for (const c of [...capabilities, ...(def.descriptors ?? []).map((d) => d.capability)]) {
          const spec = catalog[c]
          if (spec === undefined)
            return yield* new RegistryInvalid({ detail: `${where}: capability "${c}" is not in the catalog` })
        }
        for (const c of capabilities) capabilityTier = maxTier(capabilityTier, catalog[c]!.tier)
        const cacheable = def.class === "privileged" ? false : (def.cacheable ?? profile.cacheable)
        const partial = {
          tool: tool.tool,
          toolVersion: tool.version,
          action: name,
          executionClass: def.class,
          baselineTier,
          stage: def.stage ?? tool.stage,
          cacheable,
          directJump: profile.directJump,
          capabilities,
          capabilityTier
        }
        actions.set(`${tool.tool}\u0000${name}`, {
          ...partial,
          descriptors: (def.descriptors ?? []).map((d) => ({
            path: d.path.split("."),
            capability: d.capability,
            truthy: d.when === "truthy"
          })),
          // Shared by every admission of the action: frozen so that no caller can alter another's envelope.
          plain: Envelope.deepFreeze(partial)
        })
      }
    }

    const classify = (
      input: ClassifyInput
    ): Effect.Effect<Classification, ClassUnknown | CapabilityUnknown | ToolStageBlocked> => {
      const resolved = actions.get(`${input.tool}\u0000${input.action}`)
      if (resolved === undefined)
        return Effect.fail(decision(() => new ClassUnknown({ tool: input.tool, action: input.action })))
      if (!admittingStages.has(resolved.stage)) {
        return Effect.fail(
          decision(() => new ToolStageBlocked({ tool: resolved.tool, action: resolved.action, stage: resolved.stage }))
        )
      }
      let extra: Array<string> | undefined
      for (const d of resolved.descriptors) {
        const v = at(input.input, d.path)
        if (d.truthy ? Boolean(v) : v !== undefined) (extra ??= []).push(d.capability)
      }
      const requested = input.requestedCapabilities
      if (requested !== undefined) {
        for (const c of requested) {
          if (catalog[c] === undefined || !Object.hasOwn(catalog, c))
            return Effect.fail(decision(() => new CapabilityUnknown({ capability: c })))
          if (!resolved.capabilities.includes(c)) (extra ??= []).push(c)
        }
      }
      if (extra === undefined) return Effect.succeed(resolved.plain)
      const capabilities = [...new Set([...resolved.capabilities, ...extra])].sort()
      let capabilityTier = resolved.capabilityTier
      for (const c of extra) capabilityTier = maxTier(capabilityTier, catalog[c]!.tier)
      return Effect.succeed({ ...resolved.plain, capabilities, capabilityTier })
    }

    return Classifier.of({
      classify,
      capability: (name) => (Object.hasOwn(catalog, name) ? catalog[name] : undefined),
      catalog,
      tools: registry.tools
    })
  })

const at = (value: unknown, path: ReadonlyArray<string>): unknown => {
  let v = value
  for (const key of path) {
    if (typeof v !== "object" || v === null || !Object.hasOwn(v, key)) return undefined
    v = (v as Record<string, unknown>)[key]
  }
  return v
}
