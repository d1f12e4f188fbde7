/**
 * The gate: the one admission seam every framework adapter goes through, framework-neutral.
 *
 * An adapter hands the gate the credentials and the body of a request; the gate resolves the subject with the
 * configured {@link Identity} resolver, decodes the body with the route's Schema, maps it to an admission request,
 * admits it, dispatches the sealed envelope (using its single-use grant) and takes a slot in the granted tier's pool.
 * The adapter then runs the handler and calls {@link Entry.finish} with the outcome, which releases the slot (a `5xx`
 * counts against the pool's circuit breaker) and records the execution in the ledger. Adapters call `finish` before the
 * response leaves, so the outcome is in the ledger before the caller sees it (SPEC §3, invariant 5); if it cannot be
 * recorded, `finish` answers the `503` problem to send instead.
 *
 * Every refusal is a {@link Problem.Problem} with its typed error: adapters only translate it to their idiom.
 *
 * @example
 * ```ts
 * const gate = Gate.make({ governance, identity: Identity.fromBearerToken(keys) })
 * const deploy = Gate.route(gate, "serving.deploy_model", { body: DeployBody, request: ({ body }) => ({ ... }) })
 * const entry = await deploy.enter(Identity.fromNodeHeaders(req.headers), req.body, req)
 * if (!entry.ok) return send(entry.problem)
 * const output = await handler(entry.envelope)
 * const problem = await entry.finish({ statusCode: 200, output })
 * ```
 * @module
 */
import { Effect, Exit, Schema } from "effect"
import { Admission, type Admitted } from "./Admission.ts"
import {
  invalidRequestOf,
  InvalidRequest,
  parseQualifiedAction,
  type AdmissionRequestInput
} from "./AdmissionRequest.ts"
import * as Canonical from "./Canonical.ts"
import type { ExecutionEnvelope, Subject } from "./Envelope.ts"
import type { Governance } from "./Governance.ts"
import * as Identity from "./Identity.ts"
import { IsolationRouter, PoolUnavailable, type PoolName } from "./IsolationRouter.ts"
import * as Problem from "./Problem.ts"
import { sha256Hex } from "./internal/hash.ts"

/** Gate configuration, shared by every governed route of an application. */
export interface GateOptions {
  /** The governance instance (from `createGovernance`). */
  readonly governance: Governance
  /** Who is asking: never a client-set header. */
  readonly identity: Identity.IdentityResolver
  /**
   * Where admitted executions run. `local` (default): in this process, in the granted tier's pool; the gate dispatches
   * the envelope and records the outcome. `remote`: on a worker of the tier (e.g. `@egl/redis`'s BullMQ pools); the gate
   * only admits, and the worker re-verifies the envelope, uses its grant and records the outcome before it answers.
   */
  readonly execution?: "local" | "remote" | undefined
}

/** A gate: the governance instance and identity resolver adapters route through. */
export interface Gate extends GateOptions {
  readonly _tag: "Gate"
  readonly execution: "local" | "remote"
}

/** The parts of an admission request a route derives from its HTTP request (the subject comes from the gate). */
export type AdmissionParts = Omit<AdmissionRequestInput, "tool" | "action" | "subject">

/** What a route's `request` mapper receives. */
export interface MapInput<Body, Context> {
  /** The decoded body (the raw body when the route declares no `body` Schema). */
  readonly body: Body
  readonly subject: Subject
  /** The framework's request object or context, for mappers that need path parameters or the query. */
  readonly context: Context
}

/** Options of a governed route. */
export interface RouteOptions<Body = unknown, Context = unknown> {
  /** Schema of the body, decoded before mapping; a body that does not decode is `400 INVALID_REQUEST` with its issues. */
  readonly body?: Schema.Decoder<Body> | undefined
  /**
   * Maps the request to the admission's scope, input and requested capabilities / resources / escalation. Default: the
   * body itself is `{ scope, input?, requested? }`. A mapper that throws refuses the request as `400 INVALID_REQUEST`.
   */
  readonly request?: ((input: MapInput<Body, Context>) => AdmissionParts | Promise<AdmissionParts>) | undefined
}

/** How the governed handler ended. */
export interface Outcome {
  /** Status sent (or about to be sent) to the caller; `>= 400` is a failed execution, `>= 500` also trips the breaker. */
  readonly statusCode: number
  /** The output value (a handler's return value, or a JSON response body parsed back): digested canonically. */
  readonly output?: unknown
  /** The raw response bytes, digested when no output value is given. */
  readonly outputBytes?: Uint8Array | string | undefined
  /** Why the handler failed, when it threw. */
  readonly error?: string | undefined
}

/** An admitted, dispatched request holding a pool slot. */
export interface Entry {
  readonly ok: true
  /** The sealed envelope (as admitted; its decision record is at `envelope.ledger`). */
  readonly envelope: ExecutionEnvelope
  /** The verified cached output: send it instead of running the handler. */
  readonly cached?: { readonly output: unknown; readonly outputDigest: string } | undefined
  /**
   * Releases the pool slot and records the outcome; resolves to `undefined` once it is in the ledger, or to the problem
   * to send instead when it cannot be recorded. Only the first call counts.
   */
  finish(outcome: Outcome): Promise<Problem.Problem | undefined>
}

/** A refused request: the problem to answer and the typed error behind it. */
export interface Refused {
  readonly ok: false
  readonly problem: Problem.Problem
  readonly error: Problem.Refusal | InvalidRequest
}

/** A governed route: one qualified action and its request mapping. */
export interface Route<Context = unknown> {
  readonly tool: string
  readonly action: string
  /** Admits one request. Never rejects: every failure is a {@link Refused}. */
  enter(credentials: Identity.Credentials, body: unknown, context: Context): Promise<Entry | Refused>
}

/** The route or gate configuration cannot work (thrown at setup, not per request). */
export class GateConfigInvalid extends Schema.TaggedError<GateConfigInvalid>()("GateConfigInvalid", {
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid governed route: ${this.detail}`
  }
}

/** Builds a gate; throws {@link GateConfigInvalid} when the governance instance or the resolver is missing. */
export const make = (options: GateOptions): Gate => {
  if (typeof options?.governance?.admit !== "function") {
    throw new GateConfigInvalid({ detail: "governance must be an instance from createGovernance" })
  }
  if (typeof options.identity !== "function") {
    throw new GateConfigInvalid({
      detail: "identity must be a resolver (Identity.fromBearerToken, fromApiKeys, custom)"
    })
  }
  if (options.execution !== undefined && options.execution !== "local" && options.execution !== "remote") {
    throw new GateConfigInvalid({ detail: 'execution must be "local" or "remote"' })
  }
  return {
    _tag: "Gate",
    governance: options.governance,
    identity: options.identity,
    execution: options.execution ?? "local"
  }
}

const refused = (error: Problem.Refusal | InvalidRequest): Refused => ({
  ok: false,
  problem: Problem.fromError(error),
  error
})

const PARTS = ["scope", "input", "requested"] as const

/** The default mapping: the body is `{ scope, input?, requested? }`; other keys are ignored. */
const defaultParts = (body: unknown): AdmissionParts | InvalidRequest => {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return new InvalidRequest({
      detail: "the request body must be a JSON object",
      issues: [{ path: "", message: "expected an object" }]
    })
  }
  const parts: Record<string, unknown> = {}
  for (const key of PARTS) if (Object.hasOwn(body, key)) parts[key] = (body as Record<string, unknown>)[key]
  return parts as AdmissionParts
}

/** Marks a handler failure for the pool's circuit breaker. */
class HandlerFailed extends Schema.TaggedError<HandlerFailed>()("HandlerFailed", {}) {}

const FAILED_STATUS = 400

/**
 * Validates a route's action and options without a gate (adapters call it at setup, before any request): the tool and
 * action, or a thrown {@link GateConfigInvalid}.
 */
export const checkRoute = (
  qualifiedAction: string,
  options?: { readonly body?: unknown; readonly request?: unknown }
): { readonly tool: string; readonly action: string } => {
  const qualified = typeof qualifiedAction === "string" ? parseQualifiedAction(qualifiedAction) : undefined
  if (qualified === undefined) {
    throw new GateConfigInvalid({ detail: `"${String(qualifiedAction)}" is not a qualified action (tool.action)` })
  }
  if (options?.request !== undefined && typeof options.request !== "function") {
    throw new GateConfigInvalid({ detail: "request must be a function" })
  }
  if (options?.body !== undefined && !Schema.isSchema(options.body)) {
    throw new GateConfigInvalid({ detail: "body must be an effect/Schema schema" })
  }
  return qualified
}

/**
 * A governed route for `qualifiedAction` (`tool.action`, e.g. `serving.deploy_model`). Throws
 * {@link GateConfigInvalid} when the action is not qualified or the options are not functions / Schemas.
 */
export const route = <Body = unknown, Context = unknown>(
  gate: Gate,
  qualifiedAction: string,
  options?: RouteOptions<Body, Context>
): Route<Context> => {
  if (gate?._tag !== "Gate") throw new GateConfigInvalid({ detail: "not a gate (use Gate.make)" })
  const { tool, action } = checkRoute(qualifiedAction, options)
  const { governance, identity } = gate
  const remote = gate.execution === "remote"
  const runtime = governance.runtime
  const decodeBody =
    options?.body !== undefined
      ? Schema.decodeUnknownExit(options.body as Schema.Decoder<Body>, { errors: "all" })
      : undefined
  const mapRequest = options?.request

  const partsOf = async (
    body: unknown,
    subject: Subject,
    context: Context
  ): Promise<AdmissionParts | InvalidRequest> => {
    let decoded = body as Body
    if (decodeBody !== undefined) {
      const exit = decodeBody(body)
      if (Exit.isFailure(exit)) return invalidRequestOf(exit.cause, "the request body is invalid")
      decoded = exit.value
    }
    if (mapRequest === undefined) return defaultParts(decoded)
    try {
      return await mapRequest({ body: decoded, subject, context })
    } catch (cause) {
      return cause instanceof InvalidRequest
        ? cause
        : new InvalidRequest({ detail: "the request cannot be mapped to an admission", issues: [] })
    }
  }

  /** Admit, then dispatch (here, unless a remote worker will): one run of the runtime for both. */
  const admitAndDispatch = (request: AdmissionRequestInput) =>
    Admission.use((a) =>
      remote
        ? Effect.flatMap(a.admit(request), (admitted: Admitted) =>
            admitted.cached === undefined
              ? Effect.succeed(admitted)
              : Effect.as(a.dispatch(admitted.envelope), admitted)
          )
        : Effect.map(a.admitAndDispatch(request), (r) => r.admitted)
    )

  /** Takes a slot in the pool; resolves once the slot is held, with the release function. */
  const acquireSlot = async (envelope: ExecutionEnvelope) => {
    const granted = envelope.granted!
    let release!: (failed: boolean) => void
    const done = new Promise<boolean>((resolve) => (release = resolve))
    let started!: () => void
    const holding = new Promise<"held">((resolve) => (started = () => resolve("held")))
    const task = Effect.suspend(() => {
      started()
      return Effect.flatMap(
        Effect.promise(() => done),
        (failed) => (failed ? Effect.fail(new HandlerFailed()) : Effect.void)
      )
    })
    const run = runtime.runPromiseExit(IsolationRouter.use((r) => r.run(granted.pool as PoolName, task)))
    const first = await Promise.race([holding, run])
    if (first === "held") return { release }
    const failure = Exit.isFailure(first) ? first.cause.reasons.find((r) => r._tag === "Fail") : undefined
    const error = failure?._tag === "Fail" ? failure.error : undefined
    return error instanceof PoolUnavailable
      ? error
      : new PoolUnavailable({
          tier: granted.tier,
          pool: granted.pool as PoolName,
          detail: "the pool ended the execution before it started"
        })
  }

  /** The output digest to record, or the output itself when the deterministic cache should keep it. */
  const outputOf = (envelope: ExecutionEnvelope, outcome: Outcome, failed: boolean) => {
    if (outcome.output !== undefined) {
      const canonical = Canonical.toCanonicalJsonOrError(outcome.output)
      if (typeof canonical !== "string") return { outputDigest: sha256Hex(String(JSON.stringify(outcome.output))) }
      return envelope.cache.eligible && !failed ? { output: outcome.output } : { outputDigest: sha256Hex(canonical) }
    }
    return outcome.outputBytes !== undefined ? { outputDigest: sha256Hex(outcome.outputBytes) } : {}
  }

  const enter = async (
    credentials: Identity.Credentials,
    body: unknown,
    context: Context
  ): Promise<Entry | Refused> => {
    const subject = await Identity.resolve(identity, credentials)
    if ("_tag" in subject) return refused(subject)
    const parts = await partsOf(body, subject, context)
    if (parts instanceof InvalidRequest) return refused(parts)
    const request = { ...parts, tool, action, subject } as AdmissionRequestInput
    const exit = await runtime.runPromiseExit(admitAndDispatch(request))
    if (Exit.isFailure(exit)) {
      const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
      if (failure?._tag === "Fail") return refused(failure.error as Problem.Refusal)
      throw new Error("admission defect", { cause: exit.cause })
    }
    const admitted = exit.value
    const envelope = admitted.envelope
    const startedAt = performance.now()
    let finished = false

    if (admitted.cached !== undefined) {
      const cached = admitted.cached
      return {
        ok: true,
        envelope,
        cached,
        finish: async (outcome) => {
          if (finished) return undefined
          finished = true
          const result = await governance.complete(envelope, {
            status: outcome.statusCode < FAILED_STATUS ? "completed" : "failed",
            statusCode: outcome.statusCode,
            outputDigest: cached.outputDigest,
            cached: true,
            durationMs: 0
          })
          return result.ok ? undefined : Problem.fromError(result.error)
        }
      }
    }

    // A remote worker dispatches, runs and records: the adapter only relays its answer.
    if (remote) return { ok: true, envelope, finish: () => Promise.resolve(undefined) }

    const slot = await acquireSlot(envelope)
    if (!("release" in slot)) {
      await governance.complete(envelope, { status: "failed", error: slot.message, statusCode: 503 })
      return refused(slot)
    }
    return {
      ok: true,
      envelope,
      finish: async (outcome) => {
        if (finished) return undefined
        finished = true
        slot.release(outcome.statusCode >= 500)
        const failed = outcome.statusCode >= FAILED_STATUS || outcome.error !== undefined
        const result = await governance.complete(envelope, {
          status: failed ? "failed" : "completed",
          statusCode: outcome.statusCode,
          durationMs: Math.round((performance.now() - startedAt) * 1000) / 1000,
          ...(outcome.error !== undefined ? { error: outcome.error } : {}),
          ...outputOf(envelope, outcome, failed)
        })
        return result.ok ? undefined : Problem.fromError(result.error)
      }
    }
  }

  return { tool, action, enter }
}
