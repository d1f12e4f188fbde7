/**
 * Where a governed procedure finds its credentials (standalone, fetch, server-side callers, a custom accessor), setup
 * errors, the deterministic cache answered without running the resolver, and the types a resolver sees.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest"
import {
  createGovernance,
  Gate,
  Identity,
  type Classifier,
  type Envelope,
  type GovernanceInstance,
  type PolicyEngine
} from "@egl/core"
import { initTRPC, TRPCError } from "@trpc/server"
import { fetchRequestHandler } from "@trpc/server/adapters/fetch"
import { Schema } from "effect"
import { apiKeys } from "../../../apps/serving-api/src/Demo.ts"
import { eglErrorFormatter, initEgl, problemOf } from "../src/index.ts"

const keys = Identity.fromBearerToken(apiKeys)

/** A pure transform: cache-eligible, so an identical second call is served from the deterministic cache. */
const registry: Classifier.RegistryInput = {
  tools: [
    {
      tool: "text",
      version: "1.0.0",
      stage: "active",
      actions: { normalize: { class: "transform", capabilities: ["compute"] } }
    }
  ]
}
const policy: PolicyEngine.PolicyInput = {
  version: "trpc-test-1",
  rules: [{ id: "users-transform", effect: "allow", match: { principalKinds: ["user"] }, tier: 0 }]
}

/** The default mapping: the input is `{ scope, input, requested? }`. */
const NormalizeInput = Schema.toStandardSchemaV1(
  Schema.Struct({ scope: Schema.Struct({ environment: Schema.String }), input: Schema.Struct({ text: Schema.String }) })
)
const normalizeInput = (text: string) => ({ scope: { environment: "dev" }, input: { text } })

describe("governed(): credentials from the context", () => {
  let governance: GovernanceInstance
  beforeAll(async () => {
    governance = await createGovernance({ registry, policy })
  })
  afterAll(() => governance.close())

  const fetchCall = (
    router: Parameters<typeof fetchRequestHandler>[0]["router"],
    createContext: (req: Request) => object,
    auth?: string
  ) =>
    fetchRequestHandler({
      endpoint: "/trpc",
      router,
      req: new Request("http://localhost/trpc/normalize", {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth !== undefined ? { authorization: auth } : {}) },
        body: JSON.stringify(normalizeInput("fetch"))
      }),
      createContext: ({ req }) => createContext(req)
    })

  it("reads a fetch Request's headers from ctx.req, or a Headers object from ctx.headers", async () => {
    const t = initTRPC.context<object>().create({ errorFormatter: eglErrorFormatter })
    const { governed } = initEgl({ governance, identity: keys })
    const router = t.router({
      normalize: t.procedure
        .use(governed("text.normalize"))
        .input(NormalizeInput)
        .mutation(({ ctx }) => ctx.envelope.id)
    })
    for (const createContext of [(req: Request) => ({ req }), (req: Request) => ({ headers: req.headers })]) {
      const admitted = await fetchCall(router, createContext, "Bearer egl-demo-alice")
      expect(admitted.status).toBe(200)
      const id = ((await admitted.json()) as { result: { data: string } }).result.data
      expect((await governance.envelope(id))?.envelope.subject.id).toBe("alice")
      const refused = await fetchCall(router, createContext)
      expect(refused.status).toBe(401)
    }
  })

  it("takes a custom credentials accessor", async () => {
    const t = initTRPC.context<{ token: string }>().create()
    const { governed } = initEgl({
      governance,
      identity: keys,
      credentials: (ctx: { token: string }) => ({
        header: (name) => (name === "authorization" ? `Bearer ${ctx.token}` : undefined)
      })
    })
    const router = t.router({
      normalize: t.procedure
        .use(governed("text.normalize"))
        .input(NormalizeInput)
        .mutation(({ ctx }) => ctx.envelope.subject.id)
    })
    const caller = t.createCallerFactory(router)
    await expect(caller({ token: "egl-demo-bob" }).normalize(normalizeInput("custom"))).resolves.toBe("bob")
    const refused = await caller({ token: "nope" })
      .normalize(normalizeInput("custom"))
      .catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(TRPCError)
    expect((refused as TRPCError).code).toBe("UNAUTHORIZED")
    expect(problemOf(refused)?.reasonCodes).toEqual(["UNAUTHENTICATED"])
  })

  it("works through a server-side caller whose context holds node-style headers", async () => {
    const t = initTRPC.context<{ req: { headers: Record<string, string> } }>().create()
    const { governed } = initEgl({ governance, identity: keys })
    const router = t.router({
      normalize: t.procedure
        .use(governed("text.normalize"))
        .input(NormalizeInput)
        .mutation(({ ctx }) => ctx.envelope.granted?.tier)
    })
    const caller = t.createCallerFactory(router)({ req: { headers: { authorization: "Bearer egl-demo-carol" } } })
    await expect(caller.normalize(normalizeInput("server-side"))).resolves.toBe(0)
  })

  it("a context without headers fails the call with a setup error and records nothing", async () => {
    const t = initTRPC.create()
    const { governed } = initEgl({ governance, identity: keys })
    const router = t.router({
      normalize: t.procedure
        .use(governed("text.normalize"))
        .input(NormalizeInput)
        .mutation(() => "ran")
    })
    const before = (await governance.head()).size
    const error = await t
      .createCallerFactory(router)({})
      .normalize(normalizeInput("no headers"))
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TRPCError)
    expect((error as TRPCError).code).toBe("INTERNAL_SERVER_ERROR")
    expect((error as TRPCError).cause).toBeInstanceOf(Gate.GateConfigInvalid)
    expect((error as TRPCError).message).toMatch(/no request headers in the tRPC context/)
    expect((await governance.head()).size).toBe(before)
  })

  it("rejects an unusable configuration at setup, not per call", () => {
    expect(() => initEgl({ governance: {} as GovernanceInstance, identity: keys })).toThrow(Gate.GateConfigInvalid)
    expect(() => initEgl({ governance, identity: "alice" as never })).toThrow(Gate.GateConfigInvalid)
    expect(() => initEgl({ governance, identity: keys, credentials: "authorization" as never })).toThrow(
      /credentials must be a function/
    )
    const { governed } = initEgl({ governance, identity: keys })
    expect(() => governed("deploy")).toThrow(/not a qualified action/)
    expect(() => governed("text.normalize", { body: { not: "a schema" } as never })).toThrow(Gate.GateConfigInvalid)
  })
})

describe("governed(): the deterministic cache", () => {
  let governance: GovernanceInstance
  beforeAll(async () => {
    governance = await createGovernance({ registry, policy })
  })
  afterAll(() => governance.close())

  it("answers a verified cached output without running the resolver, and records it as cached", async () => {
    const t = initTRPC.context<{ req: { headers: Record<string, string> } }>().create()
    const { governed } = initEgl({ governance, identity: keys })
    let runs = 0
    const seen: Array<string> = []
    const router = t.router({
      normalize: t.procedure
        .use(governed("text.normalize"))
        .input(NormalizeInput)
        .mutation(({ ctx, input }) => {
          runs++
          seen.push(ctx.envelope.id)
          const text = (input as { input: { text: string } } | undefined)?.input.text ?? ""
          return { normalized: text.trim().toLowerCase() }
        })
    })
    const caller = t.createCallerFactory(router)({ req: { headers: { authorization: "Bearer egl-demo-alice" } } })
    const first = await caller.normalize(normalizeInput("  Hello World "))
    const second = await caller.normalize(normalizeInput("  Hello World "))
    expect(first).toEqual({ normalized: "hello world" })
    expect(second).toEqual(first)
    expect(runs).toBe(1)

    const records = (await governance.records(0, 1000)).flatMap((r) => ("_corrupt" in r ? [] : [r]))
    const decisions = records.filter((r) => r.kind === "decision")
    const cachedDecision = decisions.at(-1)!
    expect(cachedDecision.ref).not.toBe(seen[0])
    expect((JSON.parse(cachedDecision.body) as Envelope.ExecutionEnvelope).decision.reasonCodes).toContain("CACHE_HIT")
    const completion = records
      .filter((r) => r.kind === "execution" && r.ref === cachedDecision.ref)
      .map((r) => JSON.parse(r.body))
    expect(completion.map((b) => b.phase)).toEqual(["dispatched", "completed"])
    expect(completion[1]).toMatchObject({ cached: true, statusCode: 200 })
    expect((await governance.verifyLedger()).ok).toBe(true)
  })
})

describe("governed(): types", () => {
  let governance: GovernanceInstance
  beforeAll(async () => {
    governance = await createGovernance({ registry, policy })
  })
  afterAll(() => governance.close())

  it("types ctx.envelope in the resolver and keeps the app's own context", async () => {
    const t = initTRPC.context<{ req: { headers: Record<string, string> }; tenant: string }>().create()
    const { governed } = initEgl({ governance, identity: keys })
    const router = t.router({
      whoami: t.procedure
        .use(governed("text.normalize"))
        .input(NormalizeInput)
        .mutation(({ ctx }) => {
          expectTypeOf(ctx.envelope).toEqualTypeOf<Envelope.ExecutionEnvelope>()
          expectTypeOf(ctx.tenant).toEqualTypeOf<string>()
          return `${ctx.tenant}:${ctx.envelope.subject.id}`
        })
    })
    const caller = t.createCallerFactory(router)({
      req: { headers: { authorization: "Bearer egl-demo-bob" } },
      tenant: "acme"
    })
    await expect(caller.whoami(normalizeInput("types"))).resolves.toBe("acme:bob")
  })

  it("a middleware whose credentials need a context field cannot be used where the context lacks it", () => {
    const t = initTRPC.context<{ tenant: string }>().create()
    const { governed } = initEgl({
      governance,
      identity: keys,
      credentials: (ctx: { token: string }) => ({ header: () => `Bearer ${ctx.token}` })
    })
    // @ts-expect-error the app's context has no `token`
    const procedure = t.procedure.use(governed("text.normalize"))
    expect(procedure).toBeDefined()
  })
})
