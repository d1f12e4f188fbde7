/**
 * The reference route (SPEC §11) served three ways — Express, NestJS, tRPC — each on its own governance instance with
 * the same registry, policy, identity and route options, so that one scenario table can be run through each.
 */
import "reflect-metadata"
import { createGovernance, Identity, type Envelope as CoreEnvelope, type GovernanceInstance } from "@egl/core"
import * as egl from "@egl/express"
import { EglModule, EglProblemFilter, Envelope, Governed } from "@egl/nest"
import { eglErrorFormatter, initEgl } from "@egl/trpc"
import { Demo, DeployModel } from "@egl/serving-api"
import { Controller, Module, Post } from "@nestjs/common"
import { APP_FILTER, NestFactory } from "@nestjs/core"
import type { NestExpressApplication } from "@nestjs/platform-express"
import { initTRPC } from "@trpc/server"
import { createHTTPServer } from "@trpc/server/adapters/standalone"
import express from "express"
import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"

/** What a scenario step observed, in adapter-neutral terms. */
export interface Observed {
  readonly outcome: "admitted" | "denied" | "refused"
  /** The problem's status for refusals and denials (for tRPC: `data.egl.status`). */
  readonly status?: number
  readonly reasonCodes: ReadonlyArray<string>
  readonly tier?: number
  readonly granted?: Readonly<Record<string, unknown>>
}

/** A started adapter: call the route as a principal, read the ledger, stop. */
export interface Served {
  readonly name: string
  readonly governance: GovernanceInstance
  call(key: string | undefined, body: unknown): Promise<Observed>
  close(): Promise<void>
}

const governance = () => createGovernance({ registry: Demo.registry, policy: Demo.policy })
const identity = () => Identity.fromBearerToken(Demo.apiKeys)
const headers = (key: string | undefined) => ({
  "content-type": "application/json",
  ...(key !== undefined ? { authorization: `Bearer ${key}` } : {})
})

/** Reads a REST answer (Express, Nest): `{ envelope }` when admitted, a problem otherwise. */
const fromRest = async (res: Response, admittedStatus: number): Promise<Observed> => {
  const json = (await res.json()) as Record<string, unknown>
  if (res.status === admittedStatus) {
    const envelope = json["envelope"] as CoreEnvelope.ExecutionEnvelope
    return {
      outcome: "admitted",
      reasonCodes: envelope.decision.reasonCodes,
      tier: envelope.granted!.tier,
      granted: envelope.granted!.resources
    }
  }
  if (!(res.headers.get("content-type") ?? "").startsWith("application/problem+json")) {
    throw new Error(`not a problem: ${res.status} ${JSON.stringify(json)}`)
  }
  return {
    outcome: json["envelopeId"] !== undefined ? "denied" : "refused",
    status: json["status"] as number,
    reasonCodes: json["reasonCodes"] as ReadonlyArray<string>
  }
}

const listening = async (server: ReturnType<typeof createServer>) => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

export const serveExpress = async (): Promise<Served> => {
  const gov = await governance()
  const app = express()
  app.use(express.json({ limit: "64kb" }))
  app.use(egl.express({ governance: gov, identity: identity() }))
  app.post("/serving/deploy_model", egl.governed(DeployModel.ACTION, DeployModel.deployModelRoute), (req, res) => {
    res.status(201).json({ envelope: req.envelope })
  })
  app.use(egl.errorHandler())
  const server = createServer(app)
  const url = await listening(server)
  return {
    name: "express",
    governance: gov,
    call: async (key, body) =>
      fromRest(
        await fetch(`${url}/serving/deploy_model`, {
          method: "POST",
          headers: headers(key),
          body: JSON.stringify(body)
        }),
        201
      ),
    close: async () => {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
      await gov.close()
    }
  }
}

@Controller("serving")
class ServingController {
  @Post("deploy_model")
  @Governed(DeployModel.ACTION, DeployModel.deployModelRoute)
  deploy(@Envelope() envelope: CoreEnvelope.ExecutionEnvelope) {
    return { envelope }
  }
}

export const serveNest = async (): Promise<Served> => {
  const gov = await governance()
  @Module({
    imports: [EglModule.forRoot({ governance: gov, identity: identity() })],
    controllers: [ServingController],
    providers: [{ provide: APP_FILTER, useClass: EglProblemFilter }]
  })
  class AppModule {}
  const app = await NestFactory.create<NestExpressApplication>(AppModule, { logger: false, abortOnError: false })
  app.useBodyParser("json", { limit: "64kb" })
  await app.listen(0, "127.0.0.1")
  const url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`
  return {
    name: "nest",
    governance: gov,
    call: async (key, body) =>
      fromRest(
        await fetch(`${url}/serving/deploy_model`, {
          method: "POST",
          headers: headers(key),
          body: JSON.stringify(body)
        }),
        201
      ),
    close: async () => {
      await app.close()
      await gov.close()
    }
  }
}

export const serveTrpc = async (): Promise<Served> => {
  const gov = await governance()
  const t = initTRPC.context<{ req: IncomingMessage }>().create({ errorFormatter: eglErrorFormatter })
  const { governed } = initEgl({ governance: gov, identity: identity() })
  const router = t.router({
    deployModel: t.procedure
      .use(governed(DeployModel.ACTION, DeployModel.deployModelRoute))
      .mutation(({ ctx }) => ({ envelope: ctx.envelope }))
  })
  const server = createHTTPServer({ router, createContext: ({ req }) => ({ req }), maxBodySize: 64 * 1024 })
  const url = await listening(server as unknown as ReturnType<typeof createServer>)
  return {
    name: "trpc",
    governance: gov,
    call: async (key, body) => {
      const res = await fetch(`${url}/deployModel`, {
        method: "POST",
        headers: headers(key),
        body: JSON.stringify(body)
      })
      const json = (await res.json()) as {
        result?: { data: { envelope: CoreEnvelope.ExecutionEnvelope } }
        error?: { data: { egl: { status: number; reasonCodes: string[]; envelopeId?: string } | null } }
      }
      if (json.result !== undefined) {
        const envelope = json.result.data.envelope
        return {
          outcome: "admitted",
          reasonCodes: envelope.decision.reasonCodes,
          tier: envelope.granted!.tier,
          granted: envelope.granted!.resources
        }
      }
      const egl = json.error!.data.egl!
      return {
        outcome: egl.envelopeId !== undefined ? "denied" : "refused",
        status: egl.status,
        reasonCodes: egl.reasonCodes
      }
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
      await gov.close()
    }
  }
}
