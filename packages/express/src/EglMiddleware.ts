/**
 * The application-level middleware: `app.use(egl.express({ governance, identity }))` makes the governance instance
 * and the identity resolver available to every {@link governed} route of the app. It validates its options once, at
 * setup (a missing governance instance or resolver throws there, not per request), and does nothing per request but
 * attach the gate.
 * @module
 */
import { Gate } from "@egl/core"
import type { Request, RequestHandler } from "express"

/** Options of {@link express}: the governance instance and the identity resolver (never a client-set header). */
export type Options = Gate.GateOptions

const GATE = Symbol.for("@egl/express/gate")

/** The gate attached to a request by {@link express}, if any. */
export const gateOf = (req: Request): Gate.Gate | undefined => (req as unknown as Record<symbol, Gate.Gate>)[GATE]

/**
 * The app-level middleware. Throws `GateConfigInvalid` when the options cannot work.
 *
 * @example
 * ```ts
 * import * as egl from "@egl/express"
 * app.use(express.json({ limit: "64kb" }))
 * app.use(egl.express({ governance, identity: Identity.fromBearerToken(keys) }))
 * app.post("/serving/deploy_model", egl.governed("serving.deploy_model"), handler)
 * app.use(egl.errorHandler())
 * ```
 */
export const express = (options: Readonly<Options>): RequestHandler => {
  const gate = Gate.make(options)
  return function eglMiddleware(req, _res, next) {
    ;(req as unknown as Record<symbol, Gate.Gate>)[GATE] = gate
    next()
  }
}
