/**
 * RFC 8785 (JCS) serializer that validates while it serializes, in one pass.
 *
 * Numbers use ECMAScript `Number.prototype.toString` (what JSON.stringify emits), strings use JSON.stringify's escaping
 * (identical to JCS for well-formed strings), object keys are sorted by UTF-16 code units (the default Array#sort order).
 * It returns a failure object instead of throwing, and builds the failure's path only while unwinding, so the success
 * path allocates nothing but the output.
 */

declare global {
  interface String {
    /** ES2024, available since Node 20. */
    isWellFormed(): boolean
  }
}

/** Why a value has no canonical form. */
export type JcsFailureReason =
  "ForbiddenKey" | "LoneSurrogate" | "NonFiniteNumber" | "UnsafeInteger" | "MaxDepthExceeded" | "UnsupportedType"

/** A canonicalization failure, returned as a value. */
export interface JcsFailure {
  readonly _failure: true
  readonly reason: JcsFailureReason
  /** Path segments from the root, innermost last. */
  readonly segments: Array<string | number>
}

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"])

const fail = (reason: JcsFailureReason, segments: Array<string | number> = []): JcsFailure => ({
  _failure: true,
  reason,
  segments
})

const within = (f: JcsFailure, segment: string | number): JcsFailure => {
  f.segments.unshift(segment)
  return f
}

/** Dot / bracket notation of a failure's path ("" for the root). */
export const pathOf = (f: JcsFailure): string =>
  f.segments.reduce<string>((acc, s) => (typeof s === "number" ? `${acc}[${s}]` : acc === "" ? s : `${acc}.${s}`), "")

/** True when serialization failed. */
export const isFailure = (u: string | JcsFailure): u is JcsFailure => typeof u !== "string"

// Strings without quotes, backslashes, control characters or surrogates serialize as themselves between quotes; only
// the rest pay for JSON.stringify (whose escaping equals JCS's for well-formed strings) and the surrogate check.
const NEEDS_CARE = /["\\\u0000-\u001f\ud800-\udfff]/

const serializeString = (s: string): string | JcsFailure =>
  !NEEDS_CARE.test(s) ? `"${s}"` : s.isWellFormed() ? JSON.stringify(s) : fail("LoneSurrogate")

const serialize = (value: unknown, depth: number, maxDepth: number, strict: boolean): string | JcsFailure => {
  switch (typeof value) {
    case "string":
      return serializeString(value)
    case "number":
      if (!Number.isFinite(value)) return fail("NonFiniteNumber")
      if (strict && Number.isInteger(value) && !Number.isSafeInteger(value)) return fail("UnsafeInteger")
      // String(n) is Number.prototype.toString, the serialization JCS prescribes (and -0 prints as "0").
      return String(value)
    case "boolean":
      return value ? "true" : "false"
    case "object": {
      if (value === null) return "null"
      if (depth >= maxDepth) return fail("MaxDepthExceeded")
      if (Array.isArray(value)) {
        let out = "["
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i]
          if (item === undefined) return fail("UnsupportedType", [i])
          const s = serialize(item, depth + 1, maxDepth, strict)
          if (typeof s !== "string") return within(s, i)
          out += i === 0 ? s : "," + s
        }
        return out + "]"
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return fail("UnsupportedType")
      const keys = Object.keys(value).sort()
      let out = "{"
      let first = true
      for (const key of keys) {
        if (FORBIDDEN_KEYS.has(key)) return fail("ForbiddenKey", [key])
        const item = (value as Record<string, unknown>)[key]
        // Like JSON, a property whose value is undefined is absent.
        if (item === undefined) continue
        const k = serializeString(key)
        if (typeof k !== "string") return within(k, key)
        const s = serialize(item, depth + 1, maxDepth, strict)
        if (typeof s !== "string") return within(s, key)
        out += first ? k + ":" + s : "," + k + ":" + s
        first = false
      }
      return out + "}"
    }
    default:
      return fail("UnsupportedType")
  }
}

/**
 * Serializes `value` to its RFC 8785 canonical form, or describes why it cannot be. `strict` also rejects integers
 * beyond 2^53 - 1, whose JSON text may already have lost precision when it was parsed.
 */
export const canonicalize = (value: unknown, maxDepth: number, strict: boolean): string | JcsFailure =>
  serialize(value, 0, maxDepth, strict)
