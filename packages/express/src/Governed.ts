/**
 * `egl.governed(action, options?)`: the per-route middleware that admits a request before its handler runs.
 *
 * It resolves the subject, decodes and maps the body, admits and dispatches the request through `@egl/core`'s gate, and
 * then either passes the refusal to `next(err)` as an {@link EglProblemError} (rendered as problem+json by
 * {@link errorHandler}), or puts the sealed envelope on `req.envelope` and calls the handler. The response is held until
 * its outcome (status, output digest) is recorded in the ledger. A request served from the deterministic cache is
 * answered with the cached output (`200`, header `EGL-Cache: hit`) without running the handler.
 * @module
 */
import { Gate, type Envelope } from "@egl/core"
import type { NextFunction, Request, RequestHandler, Response } from "express"
import { EglProblemError } from "./EglProblemError.ts"
import { gateOf } from "./EglMiddleware.ts"
import { holdResponse } from "./internal/heldResponse.ts"

declare global {
  // Declaration merging: the admitted envelope on the Express request.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The sealed envelope of the admitted request (set by `egl.governed`). */
      envelope?: Envelope.ExecutionEnvelope
    }
  }
}

/** Options of a governed route: the body's Schema and its mapping to an admission (see `Gate.RouteOptions`). */
export type RouteOptions<Body = unknown> = Gate.RouteOptions<Body, Request>

const headersOf = (req: Request) => ({ header: (name: string) => req.headers[name] })

/**
 * The middleware that governs one route. Throws `GateConfigInvalid` at setup when `action` is not `tool.action`.
 *
 * @example
 * ```ts
 * app.post("/serving/deploy_model", egl.governed("serving.deploy_model", { body: DeployBody, request: toAdmission }),
 *   (req, res) => res.status(201).json({ envelope: req.envelope }))
 * ```
 */
export const governed = <Body = unknown>(action: string, options?: RouteOptions<Body>): RequestHandler => {
  // Validate now (setup); the route is bound to the app's gate on first use.
  Gate.checkRoute(action, options)
  const routes = new WeakMap<Gate.Gate, Gate.Route<Request>>()
  return async function eglGoverned(req: Request, res: Response, next: NextFunction) {
    const gate = gateOf(req)
    if (gate === undefined) {
      return next(new Error("egl.governed: install app.use(egl.express({ governance, identity })) before the routes"))
    }
    let route = routes.get(gate)
    if (route === undefined) {
      route = Gate.route(gate, action, options)
      routes.set(gate, route)
    }
    const entry = await route.enter(headersOf(req), req.body, req)
    if (!entry.ok) return next(new EglProblemError(entry.problem, entry.error))
    req.envelope = entry.envelope
    if (entry.cached !== undefined) {
      const problem = await entry.finish({ statusCode: 200 })
      if (problem !== undefined) return next(new EglProblemError(problem))
      res.setHeader("EGL-Cache", "hit")
      res.status(200).json(entry.cached.output)
      return
    }
    holdResponse(res, entry)
    next()
  }
}
