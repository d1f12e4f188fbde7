/**
 * The admission request: what an adapter hands to the pipeline (the boundary Schema).
 *
 * The subject comes from the adapter's configured identity resolver, never from the request body or a client-set
 * header. Everything else comes from the caller and is validated here; a request that fails validation is an
 * {@link InvalidRequest} (`INVALID_REQUEST`) and never reaches a decision.
 * @module
 */
import { type Cause, Schema, SchemaIssue } from "effect"
import { CapabilityName } from "./Capability.ts"
import { EscalationRequest, Resources, RuntimeConstraint, Scope, Subject } from "./Envelope.ts"
import { Tier } from "./ExecutionClass.ts"

const Slug = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[a-z][a-z0-9_-]{0,63}$/, { expected: "a lowercase slug" }))
)

/** What the caller asks for beyond the action's declared needs. */
export const RequestedInput = Schema.Struct({
  /** Ask for a tier above the baseline (needs an escalation). */
  tier: Schema.optionalKey(Tier),
  capabilities: Schema.optionalKey(Schema.Array(CapabilityName).pipe(Schema.check(Schema.isMaxLength(64)))),
  resources: Schema.optionalKey(Resources),
  runtime: Schema.optionalKey(RuntimeConstraint),
  escalation: Schema.optionalKey(EscalationRequest)
})
/** @see RequestedInput */
export type RequestedInput = typeof RequestedInput.Type

/** An admission request. */
export const AdmissionRequest = Schema.Struct({
  tool: Slug,
  action: Slug,
  subject: Subject,
  scope: Scope,
  /** The execution input; its canonical SHA-256 becomes `execution.inputDigest`. */
  input: Schema.optionalKey(Schema.Unknown),
  requested: Schema.optionalKey(RequestedInput)
})
/** @see AdmissionRequest */
export type AdmissionRequest = typeof AdmissionRequest.Type
/** What callers pass. */
export type AdmissionRequestInput = typeof AdmissionRequest.Encoded

/** The request is malformed (`INVALID_REQUEST`); `issues` lists what is wrong, by path. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  detail: Schema.String,
  issues: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  /** Reason code of this rejection. */
  readonly code = "INVALID_REQUEST" as const
  override get message(): string {
    return this.detail
  }
}

/** Splits a qualified action `tool.action` (the last dot separates them). */
export const parseQualifiedAction = (
  qualified: string
): { readonly tool: string; readonly action: string } | undefined => {
  const dot = qualified.lastIndexOf(".")
  if (dot <= 0 || dot === qualified.length - 1) return undefined
  return { tool: qualified.slice(0, dot), action: qualified.slice(dot + 1) }
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/** The {@link InvalidRequest} of a failed Schema decoding (its cause), with every issue by dotted path. */
export const invalidRequestOf = (cause: Cause.Cause<Schema.SchemaError>, detail: string): InvalidRequest => {
  const failure = cause.reasons.find((r) => r._tag === "Fail")
  const issues =
    failure !== undefined && failure._tag === "Fail"
      ? formatIssues(failure.error.issue).issues.map((i) => ({
          path: (i.path ?? [])
            .map((p) => (typeof p === "object" && p !== null && "key" in p ? String(p.key) : String(p)))
            .join("."),
          message: i.message
        }))
      : []
  return new InvalidRequest({ detail, issues })
}
