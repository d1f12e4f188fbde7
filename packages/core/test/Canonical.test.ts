import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { Canonical } from "@egl/core"

// The public RFC 8785 vectors live beside the repository (../shared/vectors/jcs) and are never copied into it.
const vectors = resolve(import.meta.dirname, "../../../../shared/vectors/jcs")
const present = existsSync(join(vectors, "input"))

describe("RFC 8785 vectors", () => {
  it(`canonicalize every input to its output (${present ? vectors : "vectors not present"})`, () => {
    if (!present) {
      // A clone without ../shared reports them as not present; CI always has them.
      expect(process.env.CI, `JCS vectors not present at ${vectors}`).not.toBe("true")
      return
    }
    const names = readdirSync(join(vectors, "input")).filter((n) => n.endsWith(".json"))
    expect(names.length).toBeGreaterThanOrEqual(6)
    for (const name of names) {
      const input = JSON.parse(readFileSync(join(vectors, "input", name), "utf8"))
      const expected = readFileSync(join(vectors, "output", name), "utf8")
      expect(Canonical.toCanonicalJsonSync(input, { profile: "rfc8785" }), name).toBe(expected)
    }
  })
})

const failure = (value: unknown, options?: Canonical.CanonicalOptions) => {
  const exit = Effect.runSyncExit(Canonical.toCanonicalJson(value, options))
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${exit.value}`)
  const f = exit.cause.reasons.find((r) => r._tag === "Fail")
  return (f as { error: Canonical.CanonicalizationError }).error
}

describe("canonicalization rejects what JSON cannot carry faithfully", () => {
  it.each([
    ["__proto__ key", JSON.parse('{"a":{"__proto__":{"x":1}}}'), "ForbiddenKey", "a.__proto__"],
    ["constructor key", { constructor: 1 }, "ForbiddenKey", "constructor"],
    ["prototype key", { b: [{ prototype: 1 }] }, "ForbiddenKey", "b[0].prototype"],
    ["lone high surrogate", { s: "a\uD800b" }, "LoneSurrogate", "s"],
    ["lone low surrogate key", { ["\uDC00"]: 1 }, "LoneSurrogate", "\uDC00"],
    ["NaN", { n: Number.NaN }, "NonFiniteNumber", "n"],
    ["Infinity", [Number.POSITIVE_INFINITY], "NonFiniteNumber", "[0]"],
    ["unsafe integer", { big: 2 ** 53 }, "UnsafeInteger", "big"],
    ["Date", { d: new Date(0) }, "UnsupportedType", "d"],
    ["bigint", { b: 1n }, "UnsupportedType", "b"],
    ["undefined in an array", [1, undefined], "UnsupportedType", "[1]"]
  ])("%s", (_name, value, reason, path) => {
    const error = failure(value)
    expect(error._tag).toBe("CanonicalizationError")
    expect(error.reason).toBe(reason)
    expect(error.path).toBe(path)
  })

  it("rejects excessive depth (and so cycles)", () => {
    let deep: unknown = 1
    for (let i = 0; i < 65; i++) deep = [deep]
    expect(failure(deep).reason).toBe("MaxDepthExceeded")
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    expect(failure(cycle).reason).toBe("MaxDepthExceeded")
    expect(Canonical.toCanonicalJsonSync(deep, { maxDepth: 80 })).toMatch(/^\[+1\]+$/)
  })

  it("keeps the largest safe integer and well-formed astral characters", () => {
    expect(Canonical.toCanonicalJsonSync({ n: 2 ** 53 - 1, s: "😀", f: -0, x: 1.5e-7 })).toBe(
      '{"f":0,"n":9007199254740991,"s":"😀","x":1.5e-7}'
    )
    // The RFC profile accepts integer-valued doubles beyond 2^53 (the vectors have 1E30); the strict default does not.
    expect(Canonical.toCanonicalJsonSync({ e: 1e21 }, { profile: "rfc8785" })).toBe('{"e":1e+21}')
    expect(failure({ e: 1e21 }).reason).toBe("UnsafeInteger")
  })

  it("a copy of a parsed input hashes like the original", () => {
    const text = '{"z":[1,2.5,{"b":"\\u00e9","a":null}],"a":{"y":true,"x":"\\ud83d\\ude00"}}'
    const parsed = JSON.parse(text)
    const digest = Canonical.digestSync(parsed)
    expect(Canonical.digestSync(structuredClone(parsed))).toBe(digest)
    expect(Canonical.digestSync(JSON.parse(JSON.stringify(parsed, null, 2)))).toBe(digest)
    const reordered = { a: { x: parsed.a.x, y: true }, z: parsed.z }
    expect(Canonical.digestSync(reordered)).toBe(digest)
    expect(Canonical.digestSync({ ...parsed, extra: 1 })).not.toBe(digest)
  })
})
