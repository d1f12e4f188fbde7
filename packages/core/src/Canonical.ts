/**
 * RFC 8785 JSON Canonicalization Scheme (JCS) and the SHA-256 digests built on it.
 *
 * Every content address in EGL (input digest, policy snapshot id, decision snapshot id, cache key, ledger payload
 * digest) is the SHA-256 of a JCS form, so the same value always yields the same digest however it was serialized or
 * re-parsed. Input that JSON cannot carry faithfully is rejected with a typed {@link CanonicalizationError} rather than
 * silently coerced: `__proto__` / `constructor` / `prototype` keys, lone UTF-16 surrogates, NaN and infinities,
 * integers beyond 2^53 - 1 (in the default strict profile), non-plain objects, and nesting deeper than
 * {@link DEFAULT_MAX_DEPTH}.
 *
 * @example
 * ```ts
 * import { Canonical } from "@egl/core"
 * Canonical.toCanonicalJsonSync({ b: 1, a: [true, null] }) // '{"a":[true,null],"b":1}'
 * ```
 * @module
 */
import { Effect, Schema } from "effect"
import { sha256Hex } from "./internal/hash.ts"
import { canonicalize, isFailure, pathOf, type JcsFailure } from "./internal/jcs.ts"

/** Nesting depth beyond which a value is rejected (also stops cycles). */
export const DEFAULT_MAX_DEPTH = 64

/** Why a value has no canonical form. */
export const CanonicalizationFailure = Schema.Literals([
  "ForbiddenKey",
  "LoneSurrogate",
  "NonFiniteNumber",
  "UnsafeInteger",
  "MaxDepthExceeded",
  "UnsupportedType"
])

/** A value could not be canonicalized; `path` locates the offending member (dot / bracket notation). */
export class CanonicalizationError extends Schema.TaggedError<CanonicalizationError>()("CanonicalizationError", {
  reason: CanonicalizationFailure,
  path: Schema.String
}) {
  override get message(): string {
    return `cannot canonicalize value: ${this.reason} at ${this.path === "" ? "<root>" : this.path}`
  }
}

/** Options for canonicalization. */
export interface CanonicalOptions {
  /** Maximum nesting depth (default {@link DEFAULT_MAX_DEPTH}). */
  readonly maxDepth?: number
  /**
   * `strict` (the default, EGL's input profile) also rejects integer-valued numbers beyond 2^53 - 1: their JSON text
   * may have lost precision in parsing, so two different inputs could share a digest. `rfc8785` accepts every finite
   * number, exactly as the RFC does (e.g. `1E30`).
   */
  readonly profile?: "strict" | "rfc8785"
}

const toError = (f: JcsFailure) => new CanonicalizationError({ reason: f.reason, path: pathOf(f) })

/**
 * Canonical JSON text of `value`, or the error as a value. The allocation-free variant used on hot paths.
 */
export const toCanonicalJsonOrError = (value: unknown, options?: CanonicalOptions): string | CanonicalizationError => {
  const out = canonicalize(value, options?.maxDepth ?? DEFAULT_MAX_DEPTH, options?.profile !== "rfc8785")
  return isFailure(out) ? toError(out) : out
}

/** Canonical JSON text of `value`. */
export const toCanonicalJson = (
  value: unknown,
  options?: CanonicalOptions
): Effect.Effect<string, CanonicalizationError> =>
  Effect.suspend(() => {
    const out = toCanonicalJsonOrError(value, options)
    return typeof out === "string" ? Effect.succeed(out) : Effect.fail(out)
  })

/** Canonical JSON text of `value`; throws {@link CanonicalizationError} for callers without Effect. */
export const toCanonicalJsonSync = (value: unknown, options?: CanonicalOptions): string => {
  const out = toCanonicalJsonOrError(value, options)
  if (typeof out !== "string") throw out
  return out
}

/** SHA-256 (lowercase hex) of the canonical JSON text of `value`. */
export const digest = (value: unknown, options?: CanonicalOptions): Effect.Effect<string, CanonicalizationError> =>
  Effect.map(toCanonicalJson(value, options), sha256Hex)

/** {@link digest} for callers without Effect; throws {@link CanonicalizationError}. */
export const digestSync = (value: unknown, options?: CanonicalOptions): string =>
  sha256Hex(toCanonicalJsonSync(value, options))

/** SHA-256 (lowercase hex) of a string already in canonical form. */
export const digestText = (canonicalText: string): string => sha256Hex(canonicalText)
