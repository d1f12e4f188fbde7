/**
 * A small governed Express service: `POST /inference/predict` (class `ai`, tier 2) for analysts in dev and staging,
 * and `POST /text/normalize` (class `transform`, tier 0), which the deterministic cache answers on repeat.
 */
import { createGovernance, Identity, type Classifier, type PolicyEngine } from "@egl/core"
import * as egl from "@egl/express"
import express from "express"

/** Demo API keys (load real ones from a secret store). */
export const apiKeys: Readonly<Record<string, Identity.Principal>> = {
  "example-key-ana": { id: "ana", kind: "user", roles: ["analyst"] },
  "example-key-gus": { id: "gus", kind: "user", roles: ["guest"] }
}

const registry: Classifier.RegistryInput = {
  capabilities: { "model.infer": { tier: 2, sideEffects: false } },
  tools: [
    {
      tool: "inference",
      version: "1.0.0",
      stage: "active",
      actions: { predict: { class: "ai", capabilities: ["model.infer"] } }
    },
    {
      tool: "text",
      version: "1.0.0",
      stage: "active",
      actions: { normalize: { class: "transform", capabilities: ["compute"] } }
    }
  ]
}

const policy: PolicyEngine.PolicyInput = {
  version: "express-basic-1",
  rules: [
    { id: "guests-read-only", effect: "deny", match: { roles: ["guest"], classes: ["ai"] } },
    {
      id: "analysts-predict",
      effect: "allow",
      match: { roles: ["analyst"], environments: ["dev", "staging"] },
      tier: 2
    },
    { id: "everyone-normalizes", effect: "allow", match: { classes: ["transform"] }, tier: 0 }
  ]
}

/** Builds the app over a memory ledger; `close` releases it. */
export const createApp = async () => {
  const governance = await createGovernance({ registry, policy })
  const app = express()
  app.use(express.json({ limit: "16kb" }))
  app.use(egl.express({ governance, identity: Identity.fromBearerToken(apiKeys) }))

  // The body is the admission itself: { scope, input, requested }.
  app.post("/inference/predict", egl.governed("inference.predict"), (req, res) => {
    const prompt = String((req.body as { input?: { prompt?: unknown } }).input?.prompt ?? "")
    res.json({
      envelopeId: req.envelope!.id,
      tier: req.envelope!.granted!.tier,
      prediction: prompt.length % 2 === 0 ? "even" : "odd"
    })
  })
  app.post("/text/normalize", egl.governed("text.normalize"), (req, res) => {
    const text = String((req.body as { input?: { text?: unknown } }).input?.text ?? "")
    res.json({ text: text.trim().replace(/\s+/g, " ").toLowerCase() })
  })
  app.use(egl.errorHandler())
  return { app, governance, close: () => governance.close() }
}
