/**
 * `@egl/express`: the Express 5 adapter of the Execution Governance Layer.
 *
 * @example
 * ```ts
 * import express from "express"
 * import * as egl from "@egl/express"
 *
 * const app = express()
 * app.use(egl.json({ limit: "64kb" }))
 * app.use(egl.express({ governance, identity: Identity.fromBearerToken(keys) }))
 * app.post("/serving/deploy_model", egl.governed("serving.deploy_model"), (req, res) =>
 *   res.status(201).json({ envelope: req.envelope }))
 * app.use(egl.errorHandler())
 * ```
 * @module
 */
import { express } from "./EglMiddleware.ts"
import { governed } from "./Governed.ts"
import { json } from "./JsonBody.ts"
import { errorHandler } from "./ProblemResponse.ts"

export { EglProblemError } from "./EglProblemError.ts"
export { express, gateOf, type Options } from "./EglMiddleware.ts"
export { governed, type RouteOptions } from "./Governed.ts"
export { json, limitInBytes, type JsonOptions } from "./JsonBody.ts"
export { errorHandler, problemOfBodyError, sendProblem } from "./ProblemResponse.ts"

/** The adapter as one object: `egl.json(options)`, `egl.express(options)`, `egl.governed(action)`, `egl.errorHandler()`. */
const egl = { json, express, governed, errorHandler }
export default egl
