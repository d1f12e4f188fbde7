/**
 * EGL refusals in tRPC's idiom: a {@link Problem.Problem} (RFC 9457) becomes a `TRPCError` whose code follows the
 * problem's status, with the problem itself in the error's `cause`, and an error formatter that puts the reason codes
 * in `shape.data.egl` so clients see them.
 *
 * | problem status | `TRPCError` code |
 * |---|---|
 * | `400` | `BAD_REQUEST` |
 * | `401` | `UNAUTHORIZED` |
 * | `403` | `FORBIDDEN` |
 * | `413` | `PAYLOAD_TOO_LARGE` |
 * | `503` | `SERVICE_UNAVAILABLE` |
 *
 * @example
 * ```ts
 * import { initTRPC } from "@trpc/server"
 * import { eglErrorFormatter } from "@egl/trpc"
 *
 * const t = initTRPC.context<Context>().create({ errorFormatter: eglErrorFormatter })
 * // a client then reads `error.data.egl.reasonCodes`, e.g. ["POLICY_DENY"]
 * ```
 * @module
 */
import type { Problem } from "@egl/core"
import { TRPCError, type TRPC_ERROR_CODE_KEY, type TRPCDefaultErrorShape } from "@trpc/server"

const CODES: Readonly<Record<number, TRPC_ERROR_CODE_KEY>> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  413: "PAYLOAD_TOO_LARGE",
  503: "SERVICE_UNAVAILABLE"
}

/** The `TRPCError` code of a problem status (`INTERNAL_SERVER_ERROR` for a status core does not produce). */
export const codeOf = (status: number): TRPC_ERROR_CODE_KEY => CODES[status] ?? "INTERNAL_SERVER_ERROR"

/**
 * The `cause` of every `TRPCError` EGL throws: the problem to report, and the typed error of `@egl/core` behind it (an
 * `Unauthenticated`, a `Denied` with its recorded envelope, a `LedgerUnavailable`, …) as its own `cause`.
 */
export class ProblemError extends Error {
  override readonly name = "ProblemError"
  /** The problem body, as the HTTP adapters would answer it. */
  readonly problem: Problem.Problem

  constructor(problem: Problem.Problem, cause?: unknown) {
    super(problem.detail, cause === undefined ? undefined : { cause })
    this.problem = problem
  }
}

/** A `TRPCError` for a problem: code by status, the problem's `detail` as message, a {@link ProblemError} as cause. */
export const toTRPCError = (problem: Problem.Problem, cause?: unknown): TRPCError =>
  new TRPCError({ code: codeOf(problem.status), message: problem.detail, cause: new ProblemError(problem, cause) })

/** The problem behind an error EGL threw (a `TRPCError` or the {@link ProblemError} itself), or `undefined`. */
export const problemOf = (error: unknown): Problem.Problem | undefined => {
  if (error instanceof ProblemError) return error.problem
  if (error instanceof TRPCError && error.cause instanceof ProblemError) return error.cause.problem
  return undefined
}

/** What a client finds in `error.data.egl`. */
export interface EglErrorData {
  /** The problem type URI, `urn:egl:problem:<reason>`. */
  readonly type: string
  /** The HTTP status of the problem (`401`, `403`, …), as the Express and NestJS adapters would answer. */
  readonly status: number
  /** Machine-readable reason codes, e.g. `["RESOURCE_LIMIT_EXCEEDED"]`. */
  readonly reasonCodes: ReadonlyArray<string>
  /** The recorded denied envelope, for a refusal that is a recorded decision. */
  readonly envelopeId?: string
  /** Position of the denial's ledger record. */
  readonly ledgerIndex?: number
  /** What is wrong with an invalid input, by path. */
  readonly issues?: ReadonlyArray<{ readonly path: string; readonly message: string }>
}

/** The error data of a formatted shape: tRPC's own, plus `egl` (`null` for errors that are not EGL refusals). */
export type EglErrorShape<Shape extends { readonly data: object }> = Omit<Shape, "data"> & {
  data: Shape["data"] & { egl: EglErrorData | null }
}

const dataOf = (problem: Problem.Problem): EglErrorData => ({
  type: problem.type,
  status: problem.status,
  reasonCodes: problem.reasonCodes,
  ...(problem.envelopeId !== undefined ? { envelopeId: problem.envelopeId } : {}),
  ...(problem.ledgerIndex !== undefined ? { ledgerIndex: problem.ledgerIndex } : {}),
  ...(problem.issues !== undefined ? { issues: problem.issues } : {})
})

/**
 * Adds `data.egl` to an error shape: for a custom `errorFormatter` that adds data of its own.
 *
 * @example
 * ```ts
 * initTRPC.create({ errorFormatter: ({ shape, error }) => ({ ...withProblem(shape, error), extra: 1 }) })
 * ```
 */
export const withProblem = <Shape extends { readonly data: object }>(
  shape: Shape,
  error: unknown
): EglErrorShape<Shape> => {
  const problem = problemOf(error)
  return { ...shape, data: { ...shape.data, egl: problem === undefined ? null : dataOf(problem) } }
}

/**
 * An `errorFormatter` for `initTRPC.create({ errorFormatter: eglErrorFormatter })`: tRPC's default shape plus
 * `data.egl` ({@link EglErrorData}), typed through to the client.
 */
export const eglErrorFormatter = (opts: {
  readonly shape: TRPCDefaultErrorShape
  readonly error: TRPCError
}): EglErrorShape<TRPCDefaultErrorShape> => withProblem(opts.shape, opts.error)
