/**
 * A tRPC router with one governed mutation, `deployModel`, served by tRPC's standalone HTTP adapter.
 *
 * The input is validated by a plain tRPC parser (`parseDeployInput`), then `governed()` admits the call through EGL:
 * its `request` mapper turns the validated input into the admission's scope, input and requested resources. The
 * resolver runs only when admitted, with the sealed envelope in `ctx.envelope`; a refusal is a `TRPCError` whose
 * reason codes `eglErrorFormatter` sends to the client in `error.data.egl`.
 */
import type { IncomingMessage, Server } from "node:http"
import type { AddressInfo } from "node:net"
import { createGovernance, Identity, type GovernanceConfig, type GovernanceInstance } from "@egl/core"
import { eglErrorFormatter, initEgl } from "@egl/trpc"
import { initTRPC } from "@trpc/server"
import { createHTTPServer } from "@trpc/server/adapters/standalone"
import { ACTION, apiKeys, policy, registry } from "./config.ts"

/** The input of `deployModel`. */
export interface DeployInput {
  readonly model: { readonly id: string; readonly version: string }
  readonly environment: "dev" | "staging" | "prod"
  readonly resources: { readonly gpus: number; readonly replicas: number }
}

const ENVIRONMENTS: ReadonlyArray<string> = ["dev", "staging", "prod"]
const isEnvironment = (value: unknown): value is DeployInput["environment"] =>
  typeof value === "string" && ENVIRONMENTS.includes(value)
const isCount = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 0
const isName = (value: unknown): value is string => typeof value === "string" && value.length > 0

/** A tRPC input parser: it returns the input or throws (tRPC answers `BAD_REQUEST`). */
export const parseDeployInput = (raw: unknown): DeployInput => {
  const input = raw as {
    model?: { id?: unknown; version?: unknown }
    environment?: unknown
    resources?: { gpus?: unknown; replicas?: unknown }
  } | null
  const { model, environment, resources } = input ?? {}
  if (
    isName(model?.id) &&
    isName(model.version) &&
    isEnvironment(environment) &&
    isCount(resources?.gpus) &&
    isCount(resources.replicas)
  ) {
    return {
      model: { id: model.id, version: model.version },
      environment,
      resources: { gpus: resources.gpus, replicas: resources.replicas }
    }
  }
  throw new Error("expected { model: { id, version }, environment: dev|staging|prod, resources: { gpus, replicas } }")
}

const makeRouter = (governance: GovernanceInstance) => {
  const t = initTRPC.context<{ req: IncomingMessage }>().create({ errorFormatter: eglErrorFormatter })
  const { governed } = initEgl({ governance, identity: Identity.fromBearerToken(apiKeys) })

  return t.router({
    deployModel: t.procedure
      .input(parseDeployInput)
      .use(
        governed<DeployInput>(ACTION, {
          request: ({ body }) => ({
            scope: { environment: body.environment },
            input: { model: body.model },
            requested: { resources: body.resources }
          })
        })
      )
      .mutation(({ ctx, input }) => ({
        deployment: `${input.model.id}@${input.model.version}`,
        envelopeId: ctx.envelope.id,
        tier: ctx.envelope.granted!.tier,
        granted: ctx.envelope.granted!.resources,
        reasonCodes: ctx.envelope.decision.reasonCodes,
        ledgerIndex: ctx.envelope.ledger!.index
      }))
  })
}

/** The router's type, for `createTRPCClient<AppRouter>`. */
export type AppRouter = ReturnType<typeof makeRouter>

/** A started server. */
export interface RunningServer {
  readonly url: string
  readonly governance: GovernanceInstance
  /** Stops serving, then closes the governance instance (flushing its ledger). */
  close(): Promise<void>
}

/** An HTTP server with the router and its governance instance (memory ledger unless `config.ledger` says otherwise). */
export const createServer = async (
  config?: Partial<GovernanceConfig>
): Promise<{ server: Server; governance: GovernanceInstance; listen(port: number): Promise<RunningServer> }> => {
  const governance = await createGovernance({ registry, policy, ...config })
  const server = createHTTPServer({ router: makeRouter(governance), createContext: ({ req }) => ({ req }) })
  const listen = (port: number) =>
    new Promise<RunningServer>((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
        resolve({
          url,
          governance,
          close: async () => {
            server.closeAllConnections()
            await new Promise<void>((done) => server.close(() => done()))
            await governance.close()
          }
        })
      })
    })
  return { server, governance, listen }
}
