/**
 * Spoofed identity: the subject comes from `Authorization: Bearer <api key>` alone (SPEC §11). Identity and forwarding
 * headers, a second `Authorization` header, keys in the query or the body, and near-miss keys change nothing: carol
 * (viewer) stays carol and is denied `POLICY_DENY`, where bob (ml-admin) would be admitted; without a valid key the
 * answer is `401` and nothing is recorded. The ledger's decision records name only the owners of the keys presented.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bearer, DEPLOY_PATH, KEYS, problemOf, serveApp, validBody, type Reply, type ServedApp } from "./servedApp.ts"

/** Headers a client sets to claim to be bob, an ml-admin. */
const SPOOFED: ReadonlyArray<readonly [string, Record<string, string | Array<string>>]> = [
  ["X-User", { "x-user": "bob" }],
  ["X-Forwarded-User", { "x-forwarded-user": "bob" }],
  ["X-Remote-User", { "x-remote-user": "bob" }],
  ["Remote-User", { "remote-user": "bob" }],
  ["X-Auth-Request-User", { "x-auth-request-user": "bob" }],
  ["X-Principal", { "x-principal": "bob" }],
  ["X-Subject", { "x-subject": '{"id":"bob","kind":"user","roles":["ml-admin"]}' }],
  ["X-Roles", { "x-roles": "ml-admin" }],
  ["X-Forwarded-Roles", { "x-forwarded-roles": "ml-admin" }],
  ["X-Forwarded-For", { "x-forwarded-for": "127.0.0.1, 10.0.0.1" }],
  ["Forwarded", { forwarded: 'for=127.0.0.1;by=10.0.0.1;host=admin.internal;user="bob"' }],
  ["X-Real-IP", { "x-real-ip": "127.0.0.1" }],
  ["X-Original-URL", { "x-original-url": "/admin" }],
  ["X-API-Key (bob's)", { "x-api-key": KEYS.bob }],
  ["Proxy-Authorization (bob's)", { "proxy-authorization": bearer("bob") }],
  ["Cookie (bob's)", { cookie: `authorization=${bearer("bob")}; api_key=${KEYS.bob}` }],
  ["X-Authorization (bob's)", { "x-authorization": bearer("bob") }],
  [
    "all of them",
    {
      "x-user": "bob",
      "x-forwarded-user": "bob",
      "x-remote-user": "bob",
      "x-principal": "bob",
      "x-roles": "ml-admin",
      "x-forwarded-for": "127.0.0.1",
      forwarded: "for=127.0.0.1",
      "x-api-key": KEYS.bob
    }
  ]
]

/** `Authorization` values that are not carol's key as the resolver reads it: `401`. */
const NOT_A_KEY: ReadonlyArray<string> = [
  `Bearer ${KEYS.alice}2`,
  `Bearer ${KEYS.alice}-admin`,
  `Bearer ${KEYS.alice.slice(0, -1)}`,
  `Bearer x${KEYS.alice}`,
  `Bearer ${KEYS.alice.toUpperCase()}`,
  `Bearer Egl-demo-alice`,
  `Bearer\t${KEYS.alice}`,
  `Bearer:${KEYS.alice}`,
  `Bearer=${KEYS.alice}`,
  `Bearer${KEYS.alice}`,
  KEYS.alice,
  `Basic ${Buffer.from(`alice:${KEYS.alice}`).toString("base64")}`,
  `Token ${KEYS.alice}`,
  `Bearer ${KEYS.alice} ${KEYS.bob}`,
  `Bearer ${KEYS.alice},Bearer ${KEYS.bob}`,
  `Bearer ${KEYS.alice}, Bearer ${KEYS.bob}`,
  `Bearer "${KEYS.alice}"`,
  `Bearer ${Buffer.from(KEYS.alice).toString("base64")}`,
  `Bearer ${encodeURIComponent(KEYS.alice).replace("-", "%2D")}`,
  `Bearer bob`,
  `Bearer ml-admin`,
  "Bearer ",
  "Bearer",
  ""
]

/** Spellings of carol's `Authorization` the scheme grammar allows (scheme case, spaces): still carol. */
const CAROL_SPELLINGS: ReadonlyArray<string> = [
  `Bearer ${KEYS.carol}`,
  `bearer ${KEYS.carol}`,
  `BEARER ${KEYS.carol}`,
  `bEaReR ${KEYS.carol}`,
  `Bearer    ${KEYS.carol}`,
  `Bearer ${KEYS.carol}   `,
  `   Bearer ${KEYS.carol}`
]

describe("spoofed identity and forwarding headers", () => {
  let served: ServedApp
  beforeAll(async () => {
    served = await serveApp()
  })
  afterAll(() => served.close())

  const deploy = (headers: Record<string, string | Array<string>>, body: unknown = validBody(), path = DEPLOY_PATH) =>
    served.send({ path, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) })

  /** A `403 POLICY_DENY` whose decision record in the ledger names carol, the viewer. */
  const expectCarolDenied = async (reply: Reply, label: string) => {
    expect(reply.status, `${label}: ${reply.text.slice(0, 200)}`).toBe(403)
    const problem = problemOf(reply)
    expect(problem.reasonCodes, label).toEqual(["POLICY_DENY"])
    const record = (await served.decisions()).find((d) => d.envelopeId === problem.envelopeId)
    expect(record, label).toMatchObject({ outcome: "denied", subject: { id: "carol", roles: ["viewer"] } })
  }

  /** A `401` problem with nothing added to the ledger. */
  const expectUnauthenticated = async (reply: Reply, sizeBefore: number, label: string) => {
    expect(reply.status, `${label}: ${reply.text.slice(0, 200)}`).toBe(401)
    expect(problemOf(reply).reasonCodes, label).toEqual(["UNAUTHENTICATED"])
    expect(reply.headers["www-authenticate"], label).toBe('Bearer realm="egl"')
    expect(await served.ledgerSize(), label).toBe(sizeBefore)
  }

  it("the same body is admitted for bob: the denials below are carol's, not the body's", async () => {
    const reply = await deploy({ authorization: bearer("bob") })
    expect(reply.status).toBe(201)
    expect((reply.json as { envelope: { subject: { id: string } } }).envelope.subject.id).toBe("bob")
  })

  it.each(SPOOFED)("as carol with %s claiming bob: still carol's POLICY_DENY", async (label, headers) => {
    await expectCarolDenied(await deploy({ authorization: bearer("carol"), ...headers }), label)
  })

  it.each(SPOOFED)("without a key, %s claiming bob: 401, nothing recorded", async (label, headers) => {
    const before = await served.ledgerSize()
    await expectUnauthenticated(await deploy(headers), before, label)
  })

  it("X-Roles: ml-admin does not lift alice to tier 3: her prod escalation is still not approved", async () => {
    const body = {
      ...validBody(),
      environment: "prod",
      escalation: { reason: "PRIVILEGED_MUTATION", justification: "incident 42" }
    }
    const asBob = await deploy({ authorization: bearer("bob") }, body)
    expect(asBob.status).toBe(201)
    const asAlice = await deploy(
      { authorization: bearer("alice"), "x-roles": "ml-admin", "x-user": "bob", "x-forwarded-user": "bob" },
      body
    )
    expect(asAlice.status).toBe(403)
    const problem = problemOf(asAlice)
    expect(problem.reasonCodes).toContain("ESCALATION_NOT_APPROVED")
    const record = (await served.decisions()).find((d) => d.envelopeId === problem.envelopeId)
    expect(record).toMatchObject({ outcome: "denied", subject: { id: "alice", roles: ["ml-engineer"] } })
  })

  it.each(NOT_A_KEY.map((v) => [JSON.stringify(v), v]))(
    "Authorization %s is not a key: 401, nothing recorded",
    async (_label, authorization) => {
      const before = await served.ledgerSize()
      await expectUnauthenticated(await deploy({ authorization, "x-user": "alice" }), before, authorization)
    }
  )

  it.each(CAROL_SPELLINGS.map((v) => [JSON.stringify(v), v]))(
    "Authorization %s (scheme case, spaces) is carol's key: carol's POLICY_DENY",
    async (label, authorization) => {
      await expectCarolDenied(await deploy({ authorization, "x-user": "bob" }), label)
    }
  )

  it("a second Authorization header never combines into, or switches to, another principal", async () => {
    // Node keeps the first of duplicate Authorization headers; whatever it keeps, bob's key second is not bob.
    const carolThenBob = await deploy({ authorization: [bearer("carol"), bearer("bob")] })
    if (carolThenBob.status === 403) await expectCarolDenied(carolThenBob, "carol, then bob")
    else expect(carolThenBob.status).toBe(401)

    const before = await served.ledgerSize()
    const junkThenBob = await deploy({ authorization: ["Bearer nope", bearer("bob")] })
    await expectUnauthenticated(junkThenBob, before, "junk, then bob")
  })

  it("a key in the query string is not a credential", async () => {
    const query = `access_token=${KEYS.bob}&api_key=${KEYS.bob}&authorization=${encodeURIComponent(bearer("bob"))}`
    const before = await served.ledgerSize()
    await expectUnauthenticated(await deploy({}, validBody(), `${DEPLOY_PATH}?${query}`), before, "query only")
    await expectCarolDenied(
      await deploy({ authorization: bearer("carol") }, validBody(), `${DEPLOY_PATH}?${query}`),
      "carol + query"
    )
  })

  it("a key or a subject in the body is not a credential", async () => {
    const body = {
      ...validBody(),
      apiKey: KEYS.bob,
      api_key: KEYS.bob,
      authorization: bearer("bob"),
      headers: { authorization: bearer("bob") },
      subject: { id: "bob", kind: "user", roles: ["ml-admin"] },
      principal: "bob",
      user: "bob",
      roles: ["ml-admin"]
    }
    const before = await served.ledgerSize()
    await expectUnauthenticated(await deploy({}, body), before, "body only")
    await expectCarolDenied(await deploy({ authorization: bearer("carol") }, body), "carol + body")
  })

  it("every decision in the ledger names the owner of the key presented: carol, alice or bob, never a claimed user", async () => {
    const decisions = await served.decisions()
    expect(decisions.length).toBeGreaterThan(SPOOFED.length)
    const byOwner = new Map<string, number>()
    for (const d of decisions) byOwner.set(d.subject.id, (byOwner.get(d.subject.id) ?? 0) + 1)
    // Bob's key was presented twice, validly, as the only Authorization (the control requests); every other decision
    // is carol's or alice's.
    expect(byOwner.get("bob")).toBe(2)
    expect([...byOwner.keys()].sort()).toEqual(["alice", "bob", "carol"])
    for (const d of decisions.filter((x) => x.subject.id === "carol")) {
      expect(d.outcome).toBe("denied")
      expect(d.subject.roles).toEqual(["viewer"])
    }
    expect((await served.governance.verifyLedger()).ok).toBe(true)
  })
})
