/**
 * Governed tRPC procedures: `t.procedure.use(governed("tool.action", route))` admits every call through
 * `@egl/core`'s {@link Gate} before the resolver runs, puts the sealed envelope in `ctx.envelope`, and records the
 * outcome in the ledger before the response leaves.
 *
 * Every decision is core's: this module only reads the request headers from the tRPC context, hands the procedure input
 * to the route, turns a refusal into a `TRPCError` (see `TrpcProblem`) and the resolver's result into an outcome.
 *
 * - Identity comes from the configured resolver over the request headers (`ctx.req.headers` of the standalone, Node
 *   and Express adapters, a fetch `Request`'s or `ctx.headers`), never from the input.
 * - The body the route decodes is the input as the client sent it (`getRawInput()`) when the route declares a `body`
 *   Schema, so the Schema decodes encoded values exactly once whatever the order of `.input()` and `.use()`. Without a
 *   `body` Schema, it is the input as the parsers that ran before the middleware left it (the raw input if none ran).
 * - A refusal throws before the resolver runs; the decision (a denial included) is already in the ledger.
 * - An admitted call runs the resolver with `ctx.envelope`; its result (data, or a thrown error with its HTTP status)
 *   is recorded, and a ledger that cannot record turns the answer into `SERVICE_UNAVAILABLE`.
 * - A verified cached output (cache-eligible actions, e.g. the `transform` class) is answered without running the
 *   resolver.
 *
 * @example
 * ```ts
 * import { initTRPC } from "@trpc/server"
 * import { createHTTPServer } from "@trpc/server/adapters/standalone"
 * import { createGovernance, Identity } from "@egl/core"
 * import { eglErrorFormatter, initEgl } from "@egl/trpc"
 *
 * const t = initTRPC.context<{ req: IncomingMessage }>().create({ errorFormatter: eglErrorFormatter })
 * const governance = await createGovernance({ registry, policy })
 * const { governed } = initEgl({ governance, identity: Identity.fromBearerToken(apiKeys) })
 *
 * const appRouter = t.router({
 *   deployModel: t.procedure
 *     .use(governed("serving.deploy_model", { body: DeployBody, request: toAdmission }))
 *     .input(Schema.toStandardSchemaV1(DeployBody))
 *     .mutation(({ ctx, input }) => ({ envelopeId: ctx.envelope.id, tier: ctx.envelope.granted?.tier, input }))
 * })
 * createHTTPServer({ router: appRouter, createContext: ({ req }) => ({ req }) }).listen(3002)
 * ```
 * @module
 */
import { Gate, Identity, type Envelope, type GovernanceInstance } from "@egl/core"
import type { TRPCMiddlewareFunction, TRPCProcedureType } from "@trpc/server"
import { getHTTPStatusCodeFromError } from "@trpc/server/http"
import { toTRPCError } from "./TrpcProblem.ts"

/** What a governed procedure adds to the context: `ctx.envelope`. */
export interface GovernedContext {
  /** The sealed, dispatched envelope of this call (its decision record is at `envelope.ledger`). */
  readonly envelope: Envelope.ExecutionEnvelope
}

/** The call a route's `request` mapper gets as `context` (for path, meta or context-derived scope). */
export interface CallContext<Ctx = unknown> {
  /** The tRPC context, as the middlewares before this one left it. */
  readonly ctx: Ctx
  /** The procedure's path, e.g. `deployModel` or `serving.deploy`. */
  readonly path: string
  readonly type: TRPCProcedureType
  /** The procedure's `.meta()`, if any. */
  readonly meta: unknown
}

/**
 * The middleware `governed()` returns, for `.use()`: it works on any tRPC instance whose context is a `Ctx`, and adds
 * {@link GovernedContext} to the context of the procedures after it.
 */
export type GovernedMiddleware<Ctx extends object = object> = TRPCMiddlewareFunction<
  Ctx,
  any,
  object,
  GovernedContext,
  any
>

/** Options of {@link initEgl}. */
export interface EglOptions<Ctx extends object = object> {
  /** The governance instance (from `createGovernance`). */
  readonly governance: GovernanceInstance
  /** Who is asking, from the request's credentials (`Identity.fromBearerToken`, `fromApiKeys`, `custom`). */
  readonly identity: Identity.IdentityResolver
  /** Where admitted executions run (see `Gate.GateOptions.execution`; default `local`). */
  readonly execution?: Gate.GateOptions["execution"]
  /**
   * The request headers of a call, from its context. Default: `ctx.req.headers` (a Node.js headers object, or a fetch
   * `Headers`), else `ctx.headers`; a context with neither fails the call with a setup error.
   */
  readonly credentials?: ((ctx: Ctx) => Identity.Credentials) | undefined
}

/** What {@link initEgl} returns. */
export interface Egl<Ctx extends object = object> {
  /** The gate every governed procedure admits through. */
  readonly gate: Gate.Gate
  /**
   * A middleware that governs a procedure as `qualifiedAction` (`tool.action`). `route` is core's route options: the
   * input's Schema (`body`) and its mapping to an admission (`request`; default: the input is `{ scope, input?,
   * requested? }`). Throws `GateConfigInvalid` at setup when the action is not qualified or the options are invalid.
   */
  governed<Body = unknown>(
    qualifiedAction: string,
    route?: Gate.RouteOptions<Body, CallContext<Ctx>>
  ): GovernedMiddleware<Ctx>
}

const isFetchHeaders = (headers: unknown): headers is { get(name: string): string | null } =>
  typeof headers === "object" && headers !== null && typeof (headers as { get?: unknown }).get === "function"

const headersIn = (holder: unknown): unknown =>
  typeof holder === "object" && holder !== null ? (holder as { headers?: unknown }).headers : undefined

/** The default `credentials`: the adapters' usual `createContext` puts the request (or its headers) in the context. */
const credentialsOf = (ctx: unknown): Identity.Credentials => {
  const headers = headersIn((ctx as { req?: unknown } | undefined)?.req) ?? headersIn(ctx)
  if (isFetchHeaders(headers)) return Identity.fromFetchHeaders(headers)
  if (typeof headers === "object" && headers !== null) {
    return Identity.fromNodeHeaders(headers as Parameters<typeof Identity.fromNodeHeaders>[0])
  }
  throw new Gate.GateConfigInvalid({
    detail:
      "no request headers in the tRPC context: return `{ req }` (or `{ headers }`) from createContext, " +
      "or pass `credentials: (ctx) => Identity.fromNodeHeaders(...)` to initEgl"
  })
}

// tRPC asks middlewares to pass next()'s result through and brands it with this marker at the type level only; its
// runtime never checks it, which is what lets a cached output be answered without running the resolver.
const MIDDLEWARE_MARKER = "middlewareMarker"

type MiddlewareResult = Awaited<ReturnType<GovernedMiddleware>>

/**
 * Binds EGL to a tRPC application: one {@link Gate} for the governance instance and identity resolver, and `governed`
 * to build the middleware of each governed procedure (its route is built once, here, not per call).
 * Throws `GateConfigInvalid` when the governance instance, the resolver or `credentials` is not usable.
 *
 * @example
 * ```ts
 * const { governed } = initEgl({ governance, identity: Identity.fromBearerToken(apiKeys) })
 * const deploy = t.procedure.use(governed("serving.deploy_model", deployModelRoute))
 * ```
 */
export const initEgl = <Ctx extends object = object>(options: EglOptions<Ctx>): Egl<Ctx> => {
  const gate = Gate.make({
    governance: options?.governance,
    identity: options?.identity,
    execution: options?.execution
  })
  const credentials = options.credentials ?? credentialsOf
  if (typeof credentials !== "function") {
    throw new Gate.GateConfigInvalid({ detail: "credentials must be a function of the tRPC context" })
  }

  const governed = <Body = unknown>(
    qualifiedAction: string,
    routeOptions?: Gate.RouteOptions<Body, CallContext<Ctx>>
  ): GovernedMiddleware<Ctx> => {
    const route = Gate.route(gate, qualifiedAction, routeOptions)
    const decodesBody = routeOptions?.body !== undefined

    return async function governedProcedure(opts) {
      const body = decodesBody || opts.input === undefined ? await opts.getRawInput() : opts.input
      // tRPC types the context as a mapped copy of Ctx; it is the very object createContext returned.
      const ctx = opts.ctx as unknown as Ctx
      const call: CallContext<Ctx> = { ctx, path: opts.path, type: opts.type, meta: opts.meta }
      const entry = await route.enter(credentials(ctx), body, call)
      if (!entry.ok) throw toTRPCError(entry.problem, entry.error)

      if (entry.cached !== undefined) {
        const output = entry.cached.output
        const problem = await entry.finish({ statusCode: 200, output })
        if (problem !== undefined) throw toTRPCError(problem)
        return { marker: MIDDLEWARE_MARKER, ok: true, data: output } as MiddlewareResult
      }

      let result: MiddlewareResult
      try {
        result = await opts.next({ ctx: { envelope: entry.envelope } })
      } catch (cause) {
        // tRPC turns throws into error results; this only guards the pool slot against a next() that breaks that.
        await entry.finish({ statusCode: 500, error: cause instanceof Error ? cause.message : String(cause) })
        throw cause
      }
      const problem = await entry.finish(
        result.ok
          ? // A subscription's data is its stream, not an output to digest.
            { statusCode: 200, output: opts.type === "subscription" ? undefined : result.data }
          : { statusCode: getHTTPStatusCodeFromError(result.error), error: result.error.message }
      )
      if (problem !== undefined) throw toTRPCError(problem)
      return result
    }
  }

  return { gate, governed }
}
