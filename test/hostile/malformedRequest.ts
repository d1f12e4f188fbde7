/**
 * fast-check arbitraries of malformed `POST /serving/deploy_model` requests: each carries the status the app must answer
 * with. Every generator builds a body that cannot be admitted (the point is that none reaches a decision), so each
 * breaks the body in a way nothing else in the same body can repair:
 *
 * - `notJson`: text that is not JSON (truncated, trailing garbage, `NaN`/`Infinity`/hex/leading-zero numbers, single
 *   quotes, comments, trailing commas, unquoted keys, raw control characters, bad escapes, unbalanced nesting up to
 *   5 000 levels): `400`.
 * - `invalidUtf8`: invalid UTF-8 sequences (lone continuation bytes, overlong forms, encoded surrogates, truncated
 *   sequences, `F8`–`FF`) placed outside strings (not JSON) or inside `model.id` (decoded to U+FFFD, which the
 *   printable-ASCII name rule rejects): `400`.
 * - `wrongShape`: valid JSON that the body Schema rejects: other top-level values (arrays, strings, numbers, `null`,
 *   nesting up to 5 000 levels), or a valid body with one to three fields broken (wrong types, out-of-range `gpus`,
 *   negative or huge `memoryGiB`, `1e400`, unknown `environment`, lone surrogates, bad digest / escalation), with extra
 *   keys (`__proto__`, `constructor`, random) on top: `400`.
 * - `wrongContentType`: a body that would be admitted, sent with a media type `express.json()` does not parse (so the
 *   route sees no body): `400`; or as JSON in a charset other than UTF-*: `415`.
 *
 * Any of them may also start with a UTF-8 byte order mark, which the body parser strips: it changes nothing.
 * @module
 */
import fc from "fast-check"

/** One malformed request and the status it must get. */
export interface MalformedRequest {
  readonly generator: "notJson" | "invalidUtf8" | "wrongShape" | "wrongContentType"
  /** What exactly was broken (for failure reports). */
  readonly variant: string
  /** `Content-Type` header; absent when undefined. */
  readonly contentType: string | undefined
  readonly body: Uint8Array
  readonly expectedStatus: 400 | 415
}

/** Largest body generated: under the app's default 64 kB limit, so no request is a `413`. */
export const MAX_BODY_BYTES = 60_000

const JSON_TYPE = "application/json"
const BOM = Uint8Array.of(0xef, 0xbb, 0xbf)
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
type Body = Record<string, Json>

/** Names without JSON-structural characters, so placing bytes "after a structural character" is outside strings. */
const name = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,30}$/)

/** A body the schema accepts (its policy decision does not matter: every generator breaks it). */
const validBody: fc.Arbitrary<Body> = fc.record({
  model: fc.record(
    { id: name, version: name, digest: fc.stringMatching(/^[0-9a-f]{64}$/) },
    { requiredKeys: ["id", "version"] }
  ),
  resources: fc.record(
    {
      gpus: fc.integer({ min: 0, max: 1024 }),
      gpuType: name,
      memoryGiB: fc.double({ min: 0, max: 1_048_576, noNaN: true }).map((m) => (Object.is(m, -0) ? 0 : m)),
      replicas: fc.integer({ min: 0, max: 10_000 })
    },
    { requiredKeys: ["gpus", "memoryGiB", "replicas"] }
  ),
  environment: fc.constantFrom("dev", "staging", "prod"),
  dataClassification: fc.constantFrom("public", "internal", "restricted")
}) as fc.Arbitrary<Body>

// ---- values that are wrong wherever they are put ----

const nonString: fc.Arbitrary<Json> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 })
)
const nonNumber: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom("1", "0", "", "NaN", "Infinity", "1e3"),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.constant({ value: 1 })
)
const nonObject: fc.Arbitrary<Json> = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 })
)
/** A string the printable-ASCII name rule rejects: empty, too long, or with a character outside `\x20`–`\x7e`. */
const badName: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(""),
  fc.string({ minLength: 257, maxLength: 400, unit: "grapheme-ascii" }).filter((s) => s.length > 256),
  fc
    .tuple(
      fc.string({ maxLength: 10 }),
      fc.constantFrom("\u0000", "\n", "\t", "\u007f", "é", "\u202e", "😀", "\ufeff"),
      fc.string({ maxLength: 10 })
    )
    .map(([a, c, b]) => a + c + b),
  fc.constantFrom("\ud800", "a\udc00b", "\udbff")
)
const nonInteger = fc.double({ noInteger: true, noNaN: true, noDefaultInfinity: true })

/** A token written into the JSON text as is: valid JSON, but `1e400` parses to Infinity. */
interface RawToken {
  readonly raw: string
}
const infinite: fc.Arbitrary<RawToken> = fc.constantFrom({ raw: "1e400" }, { raw: "-1e400" }, { raw: "1e999999" })

type Broken = Json | RawToken

interface Mutation {
  readonly name: string
  readonly apply: (body: Body) => Body
}

const set = (body: Body, path: ReadonlyArray<string>, value: Broken | undefined): Body => {
  const [head, ...rest] = path as [string, ...Array<string>]
  const copy: Record<string, unknown> = { ...body }
  if (rest.length === 0) {
    if (value === undefined) delete copy[head]
    else copy[head] = value
  } else {
    const inner = copy[head]
    copy[head] = set(
      typeof inner === "object" && inner !== null && !Array.isArray(inner) ? (inner as Body) : {},
      rest,
      value
    )
  }
  return copy as Body
}

const mutation = (
  label: string,
  path: ReadonlyArray<string>,
  value: fc.Arbitrary<Broken | undefined>
): fc.Arbitrary<Mutation> =>
  value.map((v) => ({
    name: `${label}=${v === undefined ? "<missing>" : describeValue(v)}`,
    apply: (b) => set(b, path, v)
  }))

const describeValue = (v: Broken): string => {
  const text = typeof v === "object" && v !== null && "raw" in v ? (v as RawToken).raw : JSON.stringify(v)
  return text.length > 40 ? `${text.slice(0, 40)}…` : text
}

const missing = fc.constant(undefined)

/** Each mutation alone makes a body invalid, whatever else the body holds. */
const mutations: fc.Arbitrary<Mutation> = fc.oneof(
  mutation("model", ["model"], fc.oneof(missing, nonObject)),
  mutation("model.id", ["model", "id"], fc.oneof(missing, nonString, badName)),
  mutation("model.version", ["model", "version"], fc.oneof(missing, nonString, badName)),
  mutation(
    "model.digest",
    ["model", "digest"],
    fc.oneof(
      nonString,
      fc.constantFrom("", "sha256:", "sha256:zz", "SHA256:" + "a".repeat(64), "a".repeat(63), "A".repeat(64))
    )
  ),
  mutation("resources", ["resources"], fc.oneof(missing, nonObject)),
  mutation(
    "resources.gpus",
    ["resources", "gpus"],
    fc.oneof(
      missing,
      nonNumber,
      fc.integer({ min: 1025 }),
      fc.integer({ max: -1 }),
      nonInteger,
      infinite,
      fc.constant({ raw: "1e21" })
    )
  ),
  mutation(
    "resources.memoryGiB",
    ["resources", "memoryGiB"],
    fc.oneof(
      missing,
      nonNumber,
      fc.double({ max: -Number.MIN_VALUE, noNaN: true, noDefaultInfinity: true }),
      fc.double({ min: 1_048_576, minExcluded: true, noNaN: true, noDefaultInfinity: true }),
      infinite
    )
  ),
  mutation(
    "resources.replicas",
    ["resources", "replicas"],
    fc.oneof(missing, nonNumber, fc.integer({ min: 10_001 }), fc.integer({ max: -1 }), nonInteger, infinite)
  ),
  mutation("resources.gpuType", ["resources", "gpuType"], fc.oneof(nonString, badName)),
  mutation(
    "environment",
    ["environment"],
    fc.oneof(
      missing,
      nonString,
      fc.constantFrom(
        "Dev",
        "PROD",
        "prod ",
        " dev",
        "production",
        "",
        "dev\u0000",
        "staging\n",
        "__proto__",
        "constructor"
      ),
      fc.string().filter((s) => !["dev", "staging", "prod"].includes(s))
    )
  ),
  mutation("dataClassification", ["dataClassification"], fc.oneof(nonString, badName)),
  mutation("escalation", ["escalation"], nonObject),
  mutation(
    "escalation.reason",
    ["escalation"],
    fc.record({
      reason: fc.oneof(
        fc.constantFrom("privileged_mutation", "P", "1ABC", "PRIVILEGED-MUTATION", "", "A".repeat(65)),
        nonString
      ),
      justification: fc.constant("because")
    })
  ),
  mutation(
    "escalation.justification",
    ["escalation"],
    fc.record({
      reason: fc.constant("PRIVILEGED_MUTATION"),
      justification: fc.oneof(
        fc.constant(null),
        fc.constant(""),
        fc.string({ minLength: 2049, maxLength: 2100, unit: "grapheme-ascii" }).filter((s) => s.length > 2048),
        fc.constantFrom("\ud800", "ok\udfff", "\udbff\udbff"),
        fc.integer()
      )
    })
  )
)

/** Sets `key` as an own enumerable property (so `__proto__` is a key, not the prototype). */
const withKey = (target: Body, key: string, value: Json): Body => {
  const copy: Body = { ...target }
  Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true })
  return copy
}

const hostileKey = fc.oneof(
  fc.constantFrom(
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "subject",
    "apiKey"
  ),
  fc.string({ maxLength: 12 })
)
const extraValue: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.constant({ polluted: true }),
  fc.constant({ prototype: { polluted: true } })
)

/** Adds extra keys at the top level and inside `model` / `resources`. */
const withExtraKeys = (body: Body): fc.Arbitrary<Body> =>
  fc
    .array(fc.tuple(fc.constantFrom<ReadonlyArray<string>>([], ["model"], ["resources"]), hostileKey, extraValue), {
      maxLength: 4
    })
    .map((extras) =>
      extras.reduce<Body>((b, [at, key, value]) => {
        if (at.length === 0) return withKey(b, key, value)
        const inner = b[at[0]!]
        if (typeof inner !== "object" || inner === null || Array.isArray(inner)) return b
        return withKey(b, at[0]!, withKey(inner as Body, key, value))
      }, body)
    )

/** JSON text of a body, writing raw tokens as they are. */
const toJsonText = (body: Body): string => {
  const tokens: Array<string> = []
  const text = JSON.stringify(body, (_key, value: unknown) => {
    if (typeof value === "object" && value !== null && "raw" in value) {
      tokens.push((value as RawToken).raw)
      return `\u0000raw${tokens.length - 1}\u0000`
    }
    return value
  })
  return text.replace(/"\\u0000raw(\d+)\\u0000"/g, (_m, i: string) => tokens[Number(i)]!)
}

const brokenBody: fc.Arbitrary<{ body: Body; variant: string }> = fc
  .tuple(validBody, fc.array(mutations, { minLength: 1, maxLength: 3 }))
  .chain(([base, ms]) => {
    const broken = ms.reduce((b, m) => m.apply(b), base)
    return withExtraKeys(broken).map((body) => ({ body, variant: ms.map((m) => m.name).join(", ") }))
  })

const deep = (depth: number, open: string, close: string, inner = ""): string =>
  open.repeat(depth) + inner + close.repeat(depth)

// ---- generators ----

const wrongShape: fc.Arbitrary<MalformedRequest> = fc
  .oneof(
    { weight: 6, arbitrary: brokenBody.map(({ body, variant }) => ({ text: toJsonText(body), variant })) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.array(validBody, { maxLength: 2 }).map((a) => ({ text: JSON.stringify(a), variant: "array of bodies" })),
        fc.string().map((s) => ({ text: JSON.stringify(s), variant: "string" })),
        fc
          .oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }))
          .map((n) => ({ text: JSON.stringify(n), variant: "number" })),
        fc
          .constantFrom("null", "true", "false", "{}", "[]", '""', "1e400", "123456789012345678901234567890")
          .map((t) => ({ text: t, variant: t })),
        fc.integer({ min: 1, max: 5_000 }).map((d) => ({ text: deep(d, "[", "]"), variant: `[] nested ${d}` })),
        fc
          .integer({ min: 1, max: 3_000 })
          .map((d) => ({ text: deep(d, '{"a":', "}", "1"), variant: `{} nested ${d}` })),
        fc
          .integer({ min: 1, max: 3_000 })
          .map((d) => ({ text: `{"model":${deep(d, '{"id":', "}", '"x"')}}`, variant: `model nested ${d}` }))
      )
    }
  )
  .map(({ text, variant }) => ({
    generator: "wrongShape",
    variant,
    contentType: JSON_TYPE,
    body: utf8(text),
    expectedStatus: 400
  }))

const anyJsonText = fc
  .oneof(
    validBody,
    brokenBody.map((b) => b.body)
  )
  .map(toJsonText)

const notJson: fc.Arbitrary<MalformedRequest> = fc
  .oneof(
    anyJsonText.chain((t) =>
      fc
        .integer({ min: 1, max: t.length - 1 })
        .map((cut) => ({ text: t.slice(0, cut), variant: `truncated at ${cut}` }))
    ),
    fc
      .tuple(
        anyJsonText,
        fc.oneof(
          fc.constantFrom("x", "}", "]", ",", "{}", "null", '"', "\u0000", "\u00a0", "\ufeff", "//", ";", " 1"),
          fc.string({ minLength: 1, maxLength: 20 }).filter((g) => /[^ \t\r\n]/.test(g))
        )
      )
      .map(([t, garbage]) => ({ text: t + garbage, variant: `trailing ${JSON.stringify(garbage)}` })),
    fc
      .tuple(
        validBody,
        fc.constantFrom(
          "NaN",
          "-NaN",
          "Infinity",
          "-Infinity",
          "undefined",
          "0x10",
          "01",
          "+1",
          ".5",
          "1.",
          "1e",
          "-",
          "--1",
          "1_000",
          "0b1",
          "١"
        )
      )
      .map(([b, token]) => ({
        text: toJsonText(set(b, ["resources", "gpus"], { raw: token })),
        variant: `gpus token ${token}`
      })),
    anyJsonText.map((t) => ({ text: t.replaceAll('"', "'"), variant: "single quotes" })),
    validBody.map((b) => ({ text: JSON.stringify(b).replace(/"([a-zA-Z]+)":/g, "$1:"), variant: "unquoted keys" })),
    validBody.map((b) => ({ text: JSON.stringify(b).replace(/}$/, ",}"), variant: "trailing comma" })),
    validBody.map((b) => ({ text: `/* hi */${JSON.stringify(b)}`, variant: "comment" })),
    fc.tuple(validBody, fc.constantFrom("\u0000", "\u0001", "\n", "\t", "\u001f")).map(([b, c]) => ({
      text: JSON.stringify(b).replace('"environment":"', `"environment":"${c}`),
      variant: `raw control ${c.charCodeAt(0)}`
    })),
    fc.tuple(validBody, fc.constantFrom("\\x41", "\\u12", "\\u", "\\", "\\uZZZZ", "\\'", "\\a")).map(([b, esc]) => ({
      text: JSON.stringify(b).replace('"environment":"', `"environment":"${esc}`),
      variant: `bad escape ${esc}`
    })),
    fc.integer({ min: 1, max: 5_000 }).map((d) => ({ text: "[".repeat(d), variant: `unclosed [ ×${d}` })),
    fc.integer({ min: 1, max: 3_000 }).map((d) => ({ text: '{"a":'.repeat(d), variant: `unclosed { ×${d}` })),
    fc
      .integer({ min: 2, max: 5_000 })
      .map((d) => ({ text: deep(d, "[", "]").slice(0, -1) + "}", variant: `mismatched close ×${d}` })),
    fc
      .constantFrom(" ", "\r\n", "\t", "{", "[", '"', "'", "{}}", "[]]", "{,}", '{"a"}', '{"a":}', '{:"a"}')
      .map((t) => ({ text: t, variant: JSON.stringify(t) }))
  )
  .map(({ text, variant }) => ({
    generator: "notJson",
    variant,
    contentType: JSON_TYPE,
    body: utf8(text),
    expectedStatus: 400
  }))

/** Byte sequences that are not UTF-8. */
const invalidUtf8Bytes = fc.oneof(
  fc.constantFrom(
    [0x80],
    [0xbf],
    [0xc0, 0xaf],
    [0xc1, 0xbf],
    [0xe0, 0x80, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xed, 0xbf, 0xbf],
    [0xf4, 0x90, 0x80, 0x80],
    [0xe2, 0x82],
    [0xf0, 0x9f, 0x98],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xfe],
    [0xff],
    [0xff, 0xfe]
  ),
  fc.array(fc.integer({ min: 0x80, max: 0xff }), { minLength: 1, maxLength: 6 })
)

const invalidUtf8: fc.Arbitrary<MalformedRequest> = fc
  .tuple(validBody, invalidUtf8Bytes, fc.boolean(), fc.nat())
  .map(([b, bytes, inString, pick]) => {
    const text = JSON.stringify(b)
    let at: number
    if (inString) at = text.indexOf('"id":"') + 6
    else {
      const structural = [...text.matchAll(/[{}[\]:,]/g)].map((m) => m.index + 1)
      at = structural[pick % structural.length]!
    }
    const before = utf8(text.slice(0, at))
    const after = utf8(text.slice(at))
    const body = new Uint8Array(before.length + bytes.length + after.length)
    body.set(before, 0)
    body.set(bytes, before.length)
    body.set(after, before.length + bytes.length)
    const hex = bytes.map((x) => x.toString(16).padStart(2, "0")).join(" ")
    return {
      generator: "invalidUtf8" as const,
      variant: `${hex} ${inString ? "in model.id" : `after offset ${at}`}`,
      contentType: JSON_TYPE,
      body,
      expectedStatus: 400 as const
    }
  })

/** Media types `express.json()` leaves unparsed (it matches `application/json` only). */
const UNPARSED_TYPES = [
  undefined,
  "text/plain",
  "text/plain; charset=utf-8",
  "text/json",
  "text/html",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/xml",
  "application/octet-stream",
  "application/merge-patch+json",
  "application/vnd.api+json",
  "application/jsonp",
  "application/json-seq",
  "application",
  "json",
  "*/*",
  "text/plain; type=application/json"
]
/** Charsets the body parser refuses for JSON (anything but UTF-*). */
const UNSUPPORTED_CHARSETS = ["latin1", "iso-8859-1", "us-ascii", "windows-1252", "ucs-2", "utf-foo", "ebcdic"]

const wrongContentType: fc.Arbitrary<MalformedRequest> = fc.oneof(
  fc.tuple(validBody, fc.constantFrom(...UNPARSED_TYPES)).map(([b, type]) => ({
    generator: "wrongContentType" as const,
    variant: `type ${String(type)}`,
    contentType: type,
    body: utf8(JSON.stringify(b)),
    expectedStatus: 400 as const
  })),
  fc.tuple(validBody, fc.constantFrom(...UNSUPPORTED_CHARSETS)).map(([b, charset]) => ({
    generator: "wrongContentType" as const,
    variant: `charset ${charset}`,
    contentType: `application/json; charset=${charset}`,
    body: utf8(JSON.stringify(b)),
    expectedStatus: 415 as const
  }))
)

const withOptionalBom = (arb: fc.Arbitrary<MalformedRequest>): fc.Arbitrary<MalformedRequest> =>
  fc.tuple(arb, fc.boolean()).map(([req, bom]) => {
    if (!bom) return req
    const body = new Uint8Array(BOM.length + req.body.length)
    body.set(BOM, 0)
    body.set(req.body, BOM.length)
    return { ...req, variant: `BOM + ${req.variant}`, body }
  })

/** A malformed request from any generator, its body under {@link MAX_BODY_BYTES}. */
export const malformedRequest: fc.Arbitrary<MalformedRequest> = withOptionalBom(
  fc.oneof(
    { weight: 3, arbitrary: notJson },
    { weight: 1, arbitrary: invalidUtf8 },
    { weight: 4, arbitrary: wrongShape },
    { weight: 1, arbitrary: wrongContentType }
  )
).filter((req) => req.body.length <= MAX_BODY_BYTES)
