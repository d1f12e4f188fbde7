/**
 * RFC 8785 (JCS) serializer that validates while it serializes, in one pass.
 *
 * Numbers use ECMAScript `Number.prototype.toString` (what JSON.stringify emits), strings use JSON.stringify's escaping
 * (identical to JCS for well-formed strings), object keys are sorted by UTF-16 code units (the default Array#sort order).
 * It returns a failure object instead of throwing so callers on the hot path pay no exception cost.
 */

export type JcsFailureReason =
  | "ForbiddenKey"
  | "LoneSurrogate"
  | "NonFiniteNumber"
  | "UnsafeInteger"
  | "MaxDepthExceeded"
  | "UnsupportedType"

export interface JcsFailure {
  readonly _failure: true
  readonly reason: JcsFailureReason
  readonly path: string
}

declare global {
  interface String {
    /** ES2024, available since Node 20. */
    isWellFormed(): boolean
  }
}

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"])

const fail = (reason: JcsFailureReason, path: string): JcsFailure => ({ _failure: true, reason, path })

export const isFailure = (u: string | JcsFailure): u is JcsFailure => typeof u !== "string"

const serializeString = (s: string, path: string): string | JcsFailure =>
  s.isWellFormed() ? JSON.stringify(s) : fail("LoneSurrogate", path)

const serialize = (value: unknown, depth: number, maxDepth: number, strict: boolean, path: string): string | JcsFailure => {
  switch (typeof value) {
    case "string":
      return serializeString(value, path)
    case "number":
      if (!Number.isFinite(value)) return fail("NonFiniteNumber", path)
      if (strict && Number.isInteger(value) && !Number.isSafeInteger(value)) return fail("UnsafeInteger", path)
      return JSON.stringify(value)
    case "boolean":
      return value ? "true" : "false"
    case "object": {
      if (value === null) return "null"
      if (depth >= maxDepth) return fail("MaxDepthExceeded", path)
      if (Array.isArray(value)) {
        let out = "["
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i]
          if (item === undefined) return fail("UnsupportedType", `${path}[${i}]`)
          const s = serialize(item, depth + 1, maxDepth, strict, path)
          if (typeof s !== "string") return s
          out += i === 0 ? s : "," + s
        }
        return out + "]"
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return fail("UnsupportedType", path)
      const keys = Object.keys(value).sort()
      let out = "{"
      let first = true
      for (const key of keys) {
        if (FORBIDDEN_KEYS.has(key)) return fail("ForbiddenKey", path === "" ? key : `${path}.${key}`)
        const item = (value as Record<string, unknown>)[key]
        // Like JSON, a property whose value is undefined is absent.
        if (item === undefined) continue
        const childPath = path === "" ? key : `${path}.${key}`
        const k = serializeString(key, childPath)
        if (typeof k !== "string") return k
        const s = serialize(item, depth + 1, maxDepth, strict, childPath)
        if (typeof s !== "string") return s
        out += first ? k + ":" + s : "," + k + ":" + s
        first = false
      }
      return out + "}"
    }
    default:
      return fail("UnsupportedType", path)
  }
}

/**
 * Serializes `value` to its RFC 8785 canonical form, or describes why it cannot be. `strict` also rejects integers
 * beyond 2^53 - 1, whose JSON text may already have lost precision when it was parsed.
 */
export const canonicalize = (value: unknown, maxDepth: number, strict: boolean): string | JcsFailure =>
  serialize(value, 0, maxDepth, strict, "")
