/**
 * `@egl/trpc`: the tRPC 11 adapter of the Execution Governance Layer.
 *
 * `initEgl({ governance, identity })` gives `governed(action, route)`, a middleware for `t.procedure.use(...)` that
 * admits each call through `@egl/core`, puts the sealed envelope in `ctx.envelope` and records the outcome; refusals
 * are `TRPCError`s whose reason codes `eglErrorFormatter` shows to clients in `error.data.egl`.
 * @module
 */
export * as Governed from "./Governed.ts"
export * as TrpcProblem from "./TrpcProblem.ts"
export {
  initEgl,
  type CallContext,
  type Egl,
  type EglOptions,
  type GovernedContext,
  type GovernedMiddleware
} from "./Governed.ts"
export {
  eglErrorFormatter,
  problemOf,
  ProblemError,
  withProblem,
  type EglErrorData,
  type EglErrorShape
} from "./TrpcProblem.ts"
