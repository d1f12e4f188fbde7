/**
 * Problem details (RFC 9457): how every refusal of EGL looks over HTTP, in one place, so the Express, NestJS and tRPC
 * adapters answer alike.
 *
 * | refusal | status |
 * |---|---|
 * | no or unknown credentials | `401` `UNAUTHENTICATED` |
 * | malformed JSON, invalid body or request | `400` `INVALID_REQUEST` |
 * | body over the limit | `413` `REQUEST_TOO_LARGE` |
 * | denied by admission (the denial is in the ledger) | `403` with the decision's reason codes and `envelopeId` |
 * | a grant already used or expired, an envelope not admitted | `403` `GRANT_REUSED` / `GRANT_EXPIRED` / `ENVELOPE_INVALID` |
 * | ledger, policy, sealer, identity resolver, grant store or pool cannot answer | `503` (nothing executes) |
 *
 * A denial whose stage could not answer (policy unavailable, a service that failed or hung, no pool) is a `503`, not a
 * `403`: the request may succeed later, and no policy said no.
 * @module
 */
import type { AdmissionError, DispatchError } from "./Admission.ts"
import type { InvalidRequest } from "./AdmissionRequest.ts"
import type { CanonicalizationError } from "./Canonical.ts"
import type { IdentityUnavailable, Unauthenticated } from "./Identity.ts"
import type { PoolUnavailable } from "./IsolationRouter.ts"

/** The media type of a problem body. */
export const CONTENT_TYPE = "application/problem+json"

/** A problem body (RFC 9457) with EGL's extension members. */
export interface Problem {
  /** A URI naming the problem type, `urn:egl:problem:<reason>`. */
  readonly type: string
  readonly title: string
  readonly status: number
  readonly detail: string
  /** Machine-readable reason codes (SPEC §4): the decision's codes for a denial. */
  readonly reasonCodes: ReadonlyArray<string>
  /** The recorded denied envelope, when the refusal is a recorded decision (`GET /envelopes/:id`). */
  readonly envelopeId?: string
  /** Position of the denial's ledger record. */
  readonly ledgerIndex?: number
  /** What is wrong with an invalid request, by path. */
  readonly issues?: ReadonlyArray<{ readonly path: string; readonly message: string }>
}

/** Every error an adapter turns into a problem. */
export type Refusal =
  AdmissionError | DispatchError | PoolUnavailable | CanonicalizationError | Unauthenticated | IdentityUnavailable

const TITLES: Readonly<Record<number, string>> = {
  400: "Invalid request",
  401: "Unauthenticated",
  403: "Execution denied",
  404: "Not found",
  413: "Request too large",
  415: "Unsupported media type",
  500: "Internal error",
  503: "Governance unavailable"
}

const typeOf = (code: string): string => `urn:egl:problem:${code.toLowerCase().replaceAll("_", "-")}`

/** Builds a problem body. */
export const make = (
  status: number,
  reasonCodes: ReadonlyArray<string>,
  detail: string,
  extra?: Pick<Problem, "envelopeId" | "ledgerIndex" | "issues">
): Problem => ({
  type: typeOf(reasonCodes.find((c) => c !== "POLICY_ALLOW") ?? "UNKNOWN"),
  title: TITLES[status] ?? "Request refused",
  status,
  detail,
  reasonCodes,
  ...extra
})

/** `400 INVALID_REQUEST` for a request that is not valid, with its issues by path. */
export const invalidRequest = (error: InvalidRequest): Problem =>
  make(400, ["INVALID_REQUEST"], error.detail, error.issues.length > 0 ? { issues: error.issues } : undefined)

/** `400 INVALID_REQUEST` for a body that is not JSON. */
export const malformedBody = (detail = "the request body is not valid JSON"): Problem =>
  make(400, ["INVALID_REQUEST"], detail)

/** `413 REQUEST_TOO_LARGE`. */
export const tooLarge = (limitBytes?: number): Problem =>
  make(
    413,
    ["REQUEST_TOO_LARGE"],
    limitBytes === undefined ? "the request body is too large" : `the request body exceeds ${limitBytes} bytes`
  )

/**
 * The problem of an error thrown by the JSON body parser every Express-based framework uses (`body-parser`, through
 * `express.json()` or Nest's platform), recognized by its documented `type`: `413 REQUEST_TOO_LARGE` over the limit,
 * `400 INVALID_REQUEST` for malformed JSON, an unreadable or undecompressable body, `415` for an unsupported encoding. `undefined` for any
 * other error (only body-parser's own types: another error may carry a `type` too).
 */
export const fromBodyParserError = (error: unknown): Problem | undefined => {
  if (typeof error !== "object" || error === null) return undefined
  const { type, limit, status, code, errno } = error as {
    readonly type?: unknown
    readonly limit?: unknown
    readonly status?: unknown
    readonly code?: unknown
    readonly errno?: unknown
  }
  // A body that does not decompress (Content-Encoding gzip / deflate / br): body-parser passes the zlib stream's own
  // error on, made a 400 and without a type; zlib errors carry a numeric errno and a code (Z_DATA_ERROR, ERR__ERROR_…).
  if (type === undefined && status === 400 && typeof code === "string" && typeof errno === "number") {
    return malformedBody("the request body could not be decompressed")
  }
  switch (type) {
    case "entity.too.large":
    case "parameters.too.many":
      return tooLarge(typeof limit === "number" ? limit : undefined)
    case "entity.parse.failed":
      return malformedBody()
    case "encoding.unsupported":
    case "charset.unsupported":
      return make(415, ["INVALID_REQUEST"], "unsupported content encoding or charset")
    case "request.aborted":
    case "request.size.invalid":
    case "stream.encoding.set":
      return malformedBody("the request body could not be read")
    default:
      return undefined
  }
}

/** Headers a problem response carries besides its media type: a `401` names the scheme to authenticate with. */
export const headersOf = (problem: Problem): Readonly<Record<string, string>> =>
  problem.status === 401 ? { "WWW-Authenticate": 'Bearer realm="egl"' } : {}

const UNAVAILABLE_DENIALS: ReadonlySet<string> = new Set(["PolicyUnavailable", "ServiceFailed", "PoolUnavailable"])

/** The problem for any refusal of the pipeline, the dispatch, the pool or the identity resolver. */
export const fromError = (error: Refusal): Problem => {
  switch (error._tag) {
    case "Denied": {
      const envelope = error.envelope
      const position =
        envelope.ledger !== undefined
          ? { envelopeId: envelope.id, ledgerIndex: envelope.ledger.index }
          : { envelopeId: envelope.id }
      return make(
        UNAVAILABLE_DENIALS.has(error.reason._tag) ? 503 : 403,
        envelope.decision.reasonCodes,
        envelope.decision.rationale,
        position
      )
    }
    case "InvalidRequest":
      return invalidRequest(error)
    case "CanonicalizationError":
      return make(400, ["INVALID_REQUEST"], error.message)
    case "LedgerUnavailable":
      return make(503, ["LEDGER_UNAVAILABLE"], "the ledger cannot record; nothing was executed")
    case "SealerUnavailable":
      return make(503, ["SEALER_UNAVAILABLE"], "the decision could not be sealed; nothing was executed")
    case "GrantStoreUnavailable":
      return make(503, ["GRANT_STORE_UNAVAILABLE"], "the grant store cannot answer; nothing was executed")
    case "PoolUnavailable":
      return make(503, ["POOL_UNAVAILABLE"], error.message)
    case "GrantRejected":
      return make(403, [error.code], error.detail, { envelopeId: error.envelopeId })
    case "EnvelopeRejected":
      return make(403, [error.code], error.detail, { envelopeId: error.envelopeId })
    case "Unauthenticated":
      return make(401, [error.code], error.detail)
    case "IdentityUnavailable":
      return make(503, [error.code], "the identity resolver cannot answer; nothing was executed")
  }
}
