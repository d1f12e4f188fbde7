/**
 * The module and the filter as an application registers them: `forRoot` / `forRootAsync`, `isGlobal`, a configuration
 * that cannot work, and what the global `EglProblemFilter` adds (and leaves alone).
 */
import { Controller, Get, Module, NotFoundException, Post } from "@nestjs/common"
import { NestFactory } from "@nestjs/core"
import { afterEach, describe, expect, it } from "vitest"
import { Gate, Identity, type Envelope as CoreEnvelope, type GovernanceInstance } from "@egl/core"
import { EGL_GATE, EglModule, EglProblemFilter, Envelope, Governed, type EglModuleOptions } from "@egl/nest"
import { apiKeys } from "../../../apps/serving-api/src/Demo.ts"
import {
  appModule,
  Calls,
  deployBody,
  demoGovernance,
  demoIdentity,
  listen,
  post,
  ServingController,
  type Running
} from "./fixtures/servingApp.ts"

let running: Running | undefined
const governances: Array<GovernanceInstance> = []
afterEach(async () => {
  await running?.close()
  running = undefined
  for (const g of governances.splice(0)) await g.close()
})

const started = async (g: GovernanceInstance) => (governances.push(g), g)
const dev = deployBody("dev", { gpus: 1, replicas: 1 })

describe("EglModule", () => {
  it("forRootAsync builds the gate from a factory with injected providers", async () => {
    const KEYS = Symbol("keys")
    @Module({ providers: [{ provide: KEYS, useValue: apiKeys }], exports: [KEYS] })
    class KeysModule {}
    running = await listen(
      appModule(
        EglModule.forRootAsync({
          imports: [KeysModule],
          inject: [KEYS],
          useFactory: async (keys: typeof apiKeys): Promise<EglModuleOptions> => ({
            governance: await started(await demoGovernance()),
            identity: Identity.fromBearerToken(keys)
          })
        })
      )
    )
    const gate = running.app.get<Gate.Gate>(EGL_GATE)
    expect(gate._tag).toBe("Gate")
    const res = await post(running.url, "/serving/deploy_model", dev, "alice")
    expect(res.status).toBe(201)
    const { envelope } = (await res.json()) as { envelope: CoreEnvelope.ExecutionEnvelope }
    expect(await gate.governance.envelope(envelope.id)).toMatchObject({ envelope: { id: envelope.id } })
  })

  it("with isGlobal, governs the controllers of modules that do not import it", async () => {
    @Module({ controllers: [ServingController], providers: [Calls] })
    class ServingModule {}
    const governance = await started(await demoGovernance())
    running = await listen(
      appModule(EglModule.forRoot({ governance, identity: demoIdentity(), isGlobal: true }), {
        imports: [ServingModule],
        controllers: []
      })
    )
    expect((await post(running.url, "/serving/deploy_model", dev, "bob")).status).toBe(201)
    expect((await post(running.url, "/serving/deploy_model", dev, "carol")).status).toBe(403)
  })

  it("fails the application's start when the options cannot make a gate", async () => {
    const bad = appModule(EglModule.forRoot({ governance: {} as never, identity: demoIdentity() }))
    await expect(NestFactory.create(bad, { logger: false, abortOnError: false })).rejects.toBeInstanceOf(
      Gate.GateConfigInvalid
    )
  })

  it("rejects an action that is not qualified when the decorator is applied", () => {
    expect(() => Governed("deploy_model")).toThrow(Gate.GateConfigInvalid)
  })
})

@Controller("misc")
class MiscController {
  @Get("missing")
  missing(): never {
    throw new NotFoundException("no such model")
  }

  @Post("envelope")
  envelope(@Envelope() envelope: CoreEnvelope.ExecutionEnvelope) {
    return { envelope }
  }
}

describe("EglProblemFilter", () => {
  it("registered with the adapter passed in: problem bodies for the body parser, Nest's answer for the rest", async () => {
    const governance = await started(await demoGovernance())
    running = await listen(
      appModule(EglModule.forRoot({ governance, identity: demoIdentity() }), {
        problemFilter: false,
        controllers: [ServingController, MiscController]
      }),
      (app) => app.useGlobalFilters(new EglProblemFilter(app.getHttpAdapter()))
    )
    const tooLarge = await post(running.url, "/serving/deploy_model", { pad: "x".repeat(150_000) }, "alice")
    expect(tooLarge.status).toBe(413)
    expect(tooLarge.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    expect(await tooLarge.json()).toMatchObject({ status: 413, reasonCodes: ["REQUEST_TOO_LARGE"] })

    const missing = await fetch(`${running.url}/misc/missing`)
    expect(missing.status).toBe(404)
    expect(missing.headers.get("content-type")).toMatch(/^application\/json/)
    expect(await missing.json()).toEqual({ statusCode: 404, message: "no such model", error: "Not Found" })
  })

  it("without it, governed refusals are still problems (@Governed applies it), body parser errors are Nest's", async () => {
    const governance = await started(await demoGovernance())
    running = await listen(
      appModule(EglModule.forRoot({ governance, identity: demoIdentity() }), {
        problemFilter: false,
        controllers: [ServingController, MiscController]
      })
    )
    const denied = await post(running.url, "/serving/deploy_model", dev, "carol")
    expect(denied.status).toBe(403)
    expect(denied.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    expect(await denied.json()).toMatchObject({ status: 403, reasonCodes: expect.arrayContaining(["POLICY_DENY"]) })

    const malformed = await post(running.url, "/serving/deploy_model", "{", "alice")
    expect(malformed.status).toBe(400)
    expect(malformed.headers.get("content-type")).toMatch(/^application\/json/)
    expect(await malformed.json()).toMatchObject({ statusCode: 400 })
  })

  it("@Envelope() outside a governed handler fails instead of inventing an envelope", async () => {
    const governance = await started(await demoGovernance())
    running = await listen(
      appModule(EglModule.forRoot({ governance, identity: demoIdentity() }), { controllers: [MiscController] })
    )
    const res = await post(running.url, "/misc/envelope", dev, "alice")
    expect(res.status).toBe(500)
  })
})
