/**
 * The tRPC server of the adapter benchmark, on `@trpc/server/adapters/standalone` (no transformer): the `deployModel`
 * mutation runs the trivial handler; governed, the same procedure has `.use(governed("serving.deploy_model",
 * deployModelRoute))` of `initEgl({ governance, identity })` first. Both take the input through the same pass-through
 * parser (the governed middleware decodes the raw input with the route's Schema itself).
 */
import type { IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import { initTRPC } from "@trpc/server"
import { createHTTPServer } from "@trpc/server/adapters/standalone"
import { eglErrorFormatter, initEgl } from "@egl/trpc"
import { DeployModel } from "@egl/serving-api"
import { reply, type DeployBody } from "./adapter-request.ts"
import type { ServerModule } from "./adapter-server.ts"

const asBody = (raw: unknown): DeployBody => raw as DeployBody

export const serve: ServerModule["serve"] = async (governance, identity) => {
  const t = initTRPC.context<{ req: IncomingMessage }>().create({ errorFormatter: eglErrorFormatter })
  const procedure =
    governance === undefined
      ? t.procedure
      : t.procedure.use(initEgl({ governance, identity }).governed(DeployModel.ACTION, DeployModel.deployModelRoute))
  const router = t.router({
    deployModel: procedure.input(asBody).mutation(({ input }) => reply(input))
  })
  const server = createHTTPServer({ router, createContext: ({ req }) => ({ req }) })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
