/**
 * The reference app (SPEC §11) as an Express 5 application over a governance instance: `POST
 * /serving/deploy_model` admitted end to end, `GET /envelopes/:id`, `GET /ledger/verify`, `GET /metrics`, `GET
 * /dashboard` and `GET /healthz`. Every error is `application/problem+json`.
 * @module
 */
import { Envelope, Identity, Ledger, Problem, type GovernanceInstance } from "@egl/core"
import type { TierQueues } from "@egl/redis"
import { Schema } from "effect"
import * as egl from "@egl/express"
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from "express"
import type { Logger } from "pino"
import { pinoHttp } from "pino-http"
import * as Dashboard from "./Dashboard.ts"
import { ACTION, DeployModelBody, deployModelRoute, toAdmission } from "./DeployModel.ts"
import * as Deployment from "./Deployment.ts"
import * as Metrics from "./Metrics.ts"

/** What the app is built from. */
export interface AppOptions {
  readonly governance: GovernanceInstance
  /** API key → principal (`Authorization: Bearer <key>`). */
  readonly apiKeys: Readonly<Record<string, Identity.Principal>>
  /** Largest accepted JSON body (default `64kb`). */
  readonly bodyLimit?: string | undefined
  /** Request logs (authorization headers redacted); none when absent. */
  readonly logger?: Logger | undefined
  /** What the deployment does once admitted, in this process (default: the simulated {@link Deployment.deploy}). */
  readonly deploy?: ((envelope: Envelope.ExecutionEnvelope, input: unknown) => Promise<unknown>) | undefined
  /**
   * Tier queues: admitted deployments run on BullMQ tier workers (`src/worker.ts`), which re-verify the envelope, use
   * its grant and record the outcome; this app only admits and relays their answer.
   */
  readonly queues?: TierQueues.TierQueues | undefined
}

/** The app and its metrics. */
export interface ServingApp {
  readonly app: Express
  readonly metrics: Metrics.Metrics
}

/** Headers never logged. */
export const REDACT = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]'
]

/** Builds the app. */
export const createApp = (options: AppOptions): ServingApp => {
  const { governance } = options
  const metrics = Metrics.make(governance)
  const app = express()
  app.disable("x-powered-by")
  app.set("trust proxy", false)
  app.set("json spaces", 0)

  if (options.logger !== undefined) app.use(pinoHttp({ logger: options.logger, redact: REDACT }))
  app.use(timed(metrics))
  app.use(egl.json({ limit: options.bodyLimit ?? "64kb", strict: true }))
  const queues = options.queues
  app.use(
    egl.express({
      governance,
      identity: Identity.fromBearerToken(options.apiKeys),
      execution: queues === undefined ? "local" : "remote"
    })
  )

  app.post("/serving/deploy_model", egl.governed(ACTION, deployModelRoute), async (req, res) => {
    const envelope = req.envelope!
    metrics.admission("admitted", 201, envelope.decision.reasonCodes)
    // The admitted input, exactly as the gate mapped it (its digest is the envelope's input digest).
    const input = toAdmission({ body: decodeBody(req.body) }).input
    if (queues === undefined) {
      const deployment = await (options.deploy ?? localDeploy)(envelope, input)
      res.status(201).json({ envelope, deployment })
      return
    }
    const result = await queues.submit(envelope, input)
    if (result.ok) {
      res.status(201).json({ envelope, deployment: result.output, worker: result.worker, execution: result.ledger })
      return
    }
    egl.sendProblem(res, problemOfSubmission(result.error, result.code, envelope.id))
  })

  app.get("/envelopes/:id", async (req, res) => {
    const id = req.params["id"]!
    const stored = id.length <= 128 ? await governance.envelope(id) : undefined
    if (stored === undefined) return egl.sendProblem(res, Problem.make(404, ["NOT_FOUND"], `no envelope ${id}`))
    res.json({
      envelope: { ...stored.envelope, ledger: { index: stored.index, hash: stored.hash } },
      sealVerified: Envelope.verifySeal(stored.envelope)
    })
  })

  app.get("/ledger/verify", async (_req, res) => {
    const report = await governance.verifyLedger()
    res.status(report.ok ? 200 : 409).json(report)
  })

  app.get("/metrics", async (_req, res) => {
    res.setHeader("Content-Type", metrics.registry.contentType)
    res.send(await metrics.registry.metrics())
  })

  app.get("/dashboard", async (_req, res) => {
    res.setHeader("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
    res.type("html").send(await Dashboard.render(governance))
  })

  app.get("/healthz", async (_req, res) => {
    const head = await governance.head()
    res.json({ ok: true, ledger: { records: head.size } })
  })

  app.use((_req, res) => egl.sendProblem(res, Problem.make(404, ["NOT_FOUND"], "no such route")))
  app.use(countRefusals(metrics))
  app.use(egl.errorHandler())
  app.use(internalError(options.logger))
  return { app, metrics }
}

const decodeBody = Schema.decodeUnknownSync(DeployModelBody)
const localDeploy = async (envelope: Envelope.ExecutionEnvelope, input: unknown) => Deployment.deploy(envelope, input)

/** The problem of a submission a tier worker did not complete: nothing was deployed unless the ledger says so. */
const problemOfSubmission = (error: TierQueues.SubmitError, code: string, envelopeId: string): Problem.Problem => {
  switch (error._tag) {
    case "PoolUnavailable":
    case "LedgerUnavailable":
      return Problem.fromError(error)
    case "DispatchRefused":
      return Problem.make(error.code === "GRANT_STORE_UNAVAILABLE" ? 503 : 403, [code], error.message, { envelopeId })
    case "ResultTimeout":
      return Problem.make(504, [code], error.message, { envelopeId })
    default:
      return Problem.make(502, [code], error.message, { envelopeId })
  }
}

/** Observes every request's duration by route. */
const timed =
  (metrics: Metrics.Metrics): RequestHandler =>
  (req, res, next) => {
    const end = metrics.requestDuration.startTimer()
    res.once("finish", () => end({ route: req.route?.path ?? "unmatched", status: String(res.statusCode) }))
    next()
  }

/** Counts refused and denied admissions by status and reason codes, then passes the error on. */
const countRefusals =
  (metrics: Metrics.Metrics): ErrorRequestHandler =>
  (err, _req, _res, next) => {
    if (err instanceof egl.EglProblemError) {
      const denied = err.problem.envelopeId !== undefined
      metrics.admission(denied ? "denied" : "refused", err.problem.status, err.problem.reasonCodes)
    } else {
      const problem = egl.problemOfBodyError(err)
      if (problem !== undefined) metrics.admission("refused", problem.status, problem.reasonCodes)
    }
    next(err)
  }

/** The last handler: a ledger that cannot answer is a `503`; anything else a `500` problem without internals (logged). */
const internalError =
  (logger: Logger | undefined): ErrorRequestHandler =>
  (err, _req, res, next) => {
    if (res.headersSent) return next(err)
    if (err instanceof Ledger.LedgerUnavailable) return egl.sendProblem(res, Problem.fromError(err))
    logger?.error({ err }, "unhandled error")
    egl.sendProblem(res, Problem.make(500, ["INTERNAL_ERROR"], "the request could not be completed"))
  }
