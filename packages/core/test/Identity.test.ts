import { describe, expect, it } from "vitest"
import * as Identity from "../src/Identity.ts"

const headers = (h: Record<string, string | ReadonlyArray<string>>) => Identity.fromNodeHeaders(h)
const alice = { id: "alice", kind: "user", roles: ["ml-engineer"] } as const
const bob = { id: "bob", kind: "service", roles: ["ml-admin"], tenant: "acme" } as const

describe("Identity resolvers", () => {
  const bearer = Identity.fromBearerToken({ "token-alice-1": alice, "token-bob-2": bob })

  it("maps a bearer token to its principal, and nothing else to anyone", async () => {
    expect(await bearer(headers({ authorization: "Bearer token-alice-1" }))).toEqual(alice)
    expect(await bearer(headers({ authorization: "bearer   token-bob-2" }))).toEqual(bob)
    for (const value of [
      "Bearer token-alice-",
      "Bearer token-alice-12",
      "Bearer TOKEN-ALICE-1",
      "Basic token-alice-1",
      "token-alice-1",
      "Bearer ",
      "Bearer token-alice-1 token-bob-2",
      `Bearer ${"x".repeat(10_000)}`
    ]) {
      expect(await bearer(headers({ authorization: value })), value).toBeUndefined()
    }
    expect(await bearer(headers({ authorization: ["Bearer token-alice-1", "Bearer token-bob-2"] }))).toBeUndefined()
  })

  it("never reads client-set identity headers", async () => {
    expect(
      await bearer(headers({ "x-user": "alice", "x-forwarded-user": "bob", "x-remote-user": "alice" }))
    ).toBeUndefined()
  })

  it("reads an API key from its header, or as a bearer token unless told not to", async () => {
    const keys = Identity.fromApiKeys({ "key-1": alice })
    expect(await keys(headers({ "x-api-key": "key-1" }))).toEqual(alice)
    expect(await keys(headers({ authorization: "Bearer key-1" }))).toEqual(alice)
    expect(await keys(headers({ "x-api-key": "key-2", authorization: "Bearer key-1" }))).toBeUndefined()
    const strict = Identity.fromApiKeys({ "key-1": alice }, { header: "X-Key", bearer: false })
    expect(await strict(headers({ "x-key": "key-1" }))).toEqual(alice)
    expect(await strict(headers({ authorization: "Bearer key-1" }))).toBeUndefined()
  })

  it("rejects a configuration that cannot work when it is built", () => {
    expect(() => Identity.fromBearerToken({})).toThrow(Identity.IdentityConfigInvalid)
    expect(() => Identity.fromBearerToken({ " padded ": alice })).toThrow(Identity.IdentityConfigInvalid)
    expect(() => Identity.fromBearerToken({ k: { id: "", kind: "user", roles: [] } })).toThrow(/not a valid subject/)
    expect(() => Identity.fromBearerToken({ k: { id: "x", kind: "robot", roles: [] } as never })).toThrow(
      Identity.IdentityConfigInvalid
    )
  })

  it("resolve: a subject, Unauthenticated, or IdentityUnavailable for a resolver that throws or answers garbage", async () => {
    expect(await Identity.resolve(bearer, headers({ authorization: "Bearer token-bob-2" }))).toEqual(bob)
    expect(await Identity.resolve(bearer, headers({}))).toBeInstanceOf(Identity.Unauthenticated)
    const throwing = Identity.custom(() => {
      throw new Error("jwks endpoint down")
    })
    const down = await Identity.resolve(throwing, headers({}))
    expect(down).toBeInstanceOf(Identity.IdentityUnavailable)
    expect((down as Identity.IdentityUnavailable).code).toBe("IDENTITY_UNAVAILABLE")
    const garbage = Identity.custom(() => ({ id: "x", kind: "user" }) as never)
    expect(await Identity.resolve(garbage, headers({}))).toBeInstanceOf(Identity.IdentityUnavailable)
    const asynchronous = Identity.custom(async (c) => (c.header("x-session") === "s1" ? alice : undefined))
    expect(await Identity.resolve(asynchronous, headers({ "x-session": "s1" }))).toEqual(alice)
  })

  it("firstOf tries resolvers in order", async () => {
    const both = Identity.firstOf(Identity.fromApiKeys({ "key-1": bob }, { bearer: false }), bearer)
    expect(await both(headers({ "x-api-key": "key-1" }))).toEqual(bob)
    expect(await both(headers({ authorization: "Bearer token-alice-1" }))).toEqual(alice)
    expect(await both(headers({}))).toBeUndefined()
  })

  it("reads Fetch API headers", async () => {
    expect(await bearer(Identity.fromFetchHeaders(new Headers({ Authorization: "Bearer token-alice-1" })))).toEqual(
      alice
    )
  })
})
