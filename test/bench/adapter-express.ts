/**
 * The Express server of the adapter benchmark: `express.json()` and the trivial handler, behind `@egl/express`
 * (`egl.express({ governance, identity })`, `egl.governed("serving.deploy_model", deployModelRoute)`,
 * `egl.errorHandler()`) when governed.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import express from "express"
import * as egl from "@egl/express"
import { DeployModel } from "@egl/serving-api"
import { PATHS, reply, type DeployBody } from "./adapter-request.ts"
import type { ServerModule } from "./adapter-server.ts"

export const serve: ServerModule["serve"] = async (governance, identity) => {
  const app = express()
  app.use(express.json({ limit: "64kb" }))
  const handler: express.RequestHandler = (req, res) => {
    res.json(reply(req.body as DeployBody))
  }
  if (governance === undefined) {
    app.post(PATHS.express, handler)
  } else {
    app.use(egl.express({ governance, identity }))
    app.post(PATHS.express, egl.governed(DeployModel.ACTION, DeployModel.deployModelRoute), handler)
    app.use(egl.errorHandler())
  }
  const server = createServer(app)
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
