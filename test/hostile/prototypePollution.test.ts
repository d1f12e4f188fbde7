/**
 * `__proto__` and `constructor.prototype` payloads are inert: at the top level or inside `model` / `resources`, with an
 * otherwise valid body or in place of a required object. The answer is a `201` or a `4xx` problem, never a `5xx`; no
 * prototype of this process (which runs the app) gains a key; and neither the answer nor the ledger carries the
 * payload: the body Schema keeps only the keys it declares.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { bearer, DEPLOY_PATH, isProblem, serveApp, type Reply, type ServedApp } from "./servedApp.ts"

const MODEL = '{"id":"llama-3-8b","version":"2024-05-01"}'
const RESOURCES = '{"gpus":1,"memoryGiB":16,"replicas":1}'
const POISON = '{"polluted":true,"isAdmin":true,"roles":["ml-admin"],"environment":"prod","gpus":1000}'
const CONSTRUCTOR = `{"prototype":${POISON}}`

/** JSON text written by hand: `JSON.stringify` of an object literal cannot produce an own `__proto__` key. */
const body = (parts: { top?: string; model?: string; resources?: string; environment?: string }): string => {
  const fields = [
    parts.top,
    `"model":${parts.model ?? MODEL}`,
    `"resources":${parts.resources ?? RESOURCES}`,
    `"environment":${parts.environment ?? '"dev"'}`
  ].filter((f) => f !== undefined)
  return `{${fields.join(",")}}`
}

const insideModel = (extra: string) => MODEL.replace(/}$/, `,${extra}}`)
const insideResources = (extra: string) => RESOURCES.replace(/}$/, `,${extra}}`)

/** A valid body carrying a payload somewhere it is ignored: admitted (alice, dev, 1 GPU) or a 4xx, never polluting. */
const CARRIERS: ReadonlyArray<readonly [string, string]> = [
  ["__proto__ at the top level", body({ top: `"__proto__":${POISON}` })],
  ["constructor.prototype at the top level", body({ top: `"constructor":${CONSTRUCTOR}` })],
  ["prototype at the top level", body({ top: `"prototype":${POISON}` })],
  ["__proto__ in model", body({ model: insideModel(`"__proto__":${POISON}`) })],
  ["constructor.prototype in model", body({ model: insideModel(`"constructor":${CONSTRUCTOR}`) })],
  ["__proto__ in resources", body({ resources: insideResources(`"__proto__":${POISON}`) })],
  ["constructor.prototype in resources", body({ resources: insideResources(`"constructor":${CONSTRUCTOR}`) })],
  ["__proto__ twice", body({ top: `"__proto__":${POISON},"__proto__":{"polluted":"again"}` })],
  ["__proto__ as an array", body({ top: `"__proto__":[${POISON}]` })],
  ["__proto__ as null", body({ top: '"__proto__":null' })],
  ["nested __proto__.__proto__", body({ top: `"__proto__":{"__proto__":${POISON}}` })],
  [
    "escaped \\u005f\\u005fproto\\u005f\\u005f",
    body({ top: `"\\u005f\\u005fproto\\u005f\\u005f":${POISON}`, model: insideModel(`"\\u005f_proto__":${POISON}`) })
  ],
  [
    "methods shadowed (toString, hasOwnProperty, valueOf)",
    body({
      top: '"toString":1,"hasOwnProperty":"x","valueOf":{},"isPrototypeOf":null',
      model: insideModel('"hasOwnProperty":1,"toString":"x"'),
      resources: insideResources('"valueOf":1,"hasOwnProperty":null')
    })
  ],
  ["everything at once", body({ top: `"__proto__":${POISON},"constructor":${CONSTRUCTOR}` })]
]

/** A payload where a required object or key should be: whatever the prototype would hold is not an own key: 400. */
const REPLACEMENTS: ReadonlyArray<readonly [string, string]> = [
  ["model only through __proto__", body({ model: `{"__proto__":${MODEL}}` })],
  ["resources only through __proto__", body({ resources: `{"__proto__":${RESOURCES}}` })],
  ["model.id only through __proto__", body({ model: '{"version":"1","__proto__":{"id":"m"}}' })],
  ["resources.gpus only through __proto__", body({ resources: '{"memoryGiB":1,"replicas":1,"__proto__":{"gpus":1}}' })],
  [
    "environment only through __proto__",
    `{"__proto__":{"environment":"dev"},"model":${MODEL},"resources":${RESOURCES}}`
  ],
  ["model through constructor.prototype", `{"constructor":{"prototype":{"model":${MODEL}}},"resources":${RESOURCES}}`],
  ["model is __proto__-only and gpus out of range", body({ model: `{"__proto__":${MODEL}}`, resources: POISON })],
  ["a bare __proto__ object", `{"__proto__":${POISON}}`],
  ["a bare constructor.prototype", `{"constructor":${CONSTRUCTOR}}`],
  ["environment is __proto__", body({ environment: '"__proto__"' })],
  ["environment is constructor", body({ environment: '"constructor"' })],
  ["environment is hasOwnProperty", body({ environment: '"hasOwnProperty"' })]
]

const POISON_KEYS = ["polluted", "isAdmin"] as const

/** Prototypes a pollution would land on. */
const prototypes = (): ReadonlyArray<readonly [string, object]> => [
  ["Object.prototype", Object.prototype],
  ["Array.prototype", Array.prototype],
  ["Function.prototype", Function.prototype],
  ["String.prototype", String.prototype]
]

const expectNoPollution = () => {
  const fresh: Record<string, unknown> = {}
  for (const key of POISON_KEYS) {
    expect(fresh[key], `({}).${key}`).toBeUndefined()
    for (const [name, proto] of prototypes()) expect(Object.hasOwn(proto, key), `${name}.${key}`).toBe(false)
  }
  expect(({} as { roles?: unknown }).roles).toBeUndefined()
  expect(({} as { environment?: unknown }).environment).toBeUndefined()
  expect(({} as { gpus?: unknown }).gpus).toBeUndefined()
}

describe("prototype pollution payloads", () => {
  let served: ServedApp
  beforeAll(async () => {
    served = await serveApp()
  })
  afterAll(() => served.close())
  afterEach(expectNoPollution)

  const send = (text: string, who: "alice" | "carol" = "alice"): Promise<Reply> =>
    served.send({
      path: DEPLOY_PATH,
      headers: { "content-type": "application/json", authorization: bearer(who) },
      body: text
    })

  const expectInert = (reply: Reply, label: string) => {
    expect(reply.status, `${label}: ${reply.text.slice(0, 300)}`).toBeLessThan(500)
    expect(reply.text, label).not.toMatch(/polluted|isAdmin|__proto__/)
    if (reply.status === 201) {
      const { envelope } = reply.json as {
        envelope: {
          subject: { id: string; roles: ReadonlyArray<string> }
          scope: Record<string, unknown>
          requested: { resources: Record<string, unknown> }
          granted: { tier: number }
        }
      }
      // Exactly what was asked, as alice: no key from the payload reached the request or the grant.
      expect(envelope.subject).toEqual({ id: "alice", kind: "user", roles: ["ml-engineer"] })
      expect(envelope.scope).toMatchObject({ environment: "dev" })
      expect(envelope.requested.resources).toEqual({ gpus: 1, memoryGiB: 16, replicas: 1 })
      expect(envelope.granted.tier).toBe(2)
    } else {
      expect(isProblem(reply), label).toBe(true)
    }
  }

  it.each(CARRIERS)("%s: admitted as asked or a 4xx problem, nothing polluted", async (label, text) => {
    expect(() => JSON.parse(text) as unknown, "the payload is valid JSON").not.toThrow()
    const reply = await send(text)
    expectInert(reply, label)
  })

  it.each(REPLACEMENTS)("%s: 400 INVALID_REQUEST", async (label, text) => {
    const reply = await send(text)
    expect(reply.status, `${label}: ${reply.text.slice(0, 300)}`).toBe(400)
    expect(isProblem(reply)).toBe(true)
    expect((reply.json as { reasonCodes: ReadonlyArray<string> }).reasonCodes).toEqual(["INVALID_REQUEST"])
    expect(reply.text).not.toMatch(/polluted|isAdmin/)
  })

  it.each(CARRIERS)("%s, as carol: still denied POLICY_DENY as a viewer", async (label, text) => {
    const reply = await send(text, "carol")
    expect(reply.status, `${label}: ${reply.text.slice(0, 300)}`).toBe(403)
    expect((reply.json as { reasonCodes: ReadonlyArray<string> }).reasonCodes).toEqual(["POLICY_DENY"])
  })

  it("__proto__ in the query string is inert", async () => {
    const reply = await served.send({
      path: `${DEPLOY_PATH}?__proto__[polluted]=true&constructor[prototype][isAdmin]=true&__proto__.polluted=1`,
      headers: { "content-type": "application/json", authorization: bearer("alice") },
      body: body({})
    })
    expectInert(reply, "query")
  })

  it("no ledger record carries the payload, every admission ran the handler once, and the ledger verifies", async () => {
    const { size } = await served.governance.head()
    const records = await served.governance.records(0, size)
    for (const r of records) if ("body" in r) expect(r.body).not.toMatch(/polluted|isAdmin|__proto__/)
    const admitted = (await served.decisions()).filter((d) => d.outcome === "admitted")
    expect(admitted.length).toBeGreaterThan(0)
    expect(served.deployed).toEqual(admitted.map((d) => d.envelopeId))
    expect((await served.governance.verifyLedger()).ok).toBe(true)
    // A clean request after all of it is decided as usual.
    const clean = await send(body({}))
    expect(clean.status).toBe(201)
  })
})
