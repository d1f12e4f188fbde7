/**
 * `POST /serving/deploy_model` (SPEC §11): the body's Schema and its mapping to an admission request.
 *
 * The body is validated at the boundary (a body that does not decode is `400 INVALID_REQUEST` with its issues), then
 * mapped: `environment` and `dataClassification` are the scope policy keys on, `model` is the execution input (its
 * canonical digest is the envelope's input digest), `resources` and `escalation` are what is requested. The subject is
 * never in the body: it comes from the configured identity resolver.
 * @module
 */
import type { Gate } from "@egl/core"
import { Schema } from "effect"

/** The qualified action this route admits. */
export const ACTION = "serving.deploy_model"

const Name = Schema.String.pipe(
  Schema.check(Schema.isMinLength(1), Schema.isMaxLength(256), Schema.isPattern(/^[\x20-\x7e]+$/))
)
const Count = (max: number) => Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: max })))

/** The model to deploy. */
export const Model = Schema.Struct({
  id: Name,
  version: Name,
  digest: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isPattern(/^(sha256:)?[0-9a-f]{64}$/))))
})

/** Resources asked for. */
export const DeployResources = Schema.Struct({
  gpus: Count(1024),
  gpuType: Schema.optionalKey(Name),
  memoryGiB: Schema.Finite.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 1_048_576 }))),
  replicas: Count(10_000)
})

/** The request body of `POST /serving/deploy_model`. */
export const DeployModelBody = Schema.Struct({
  model: Model,
  resources: DeployResources,
  environment: Schema.Literals(["dev", "staging", "prod"]),
  dataClassification: Schema.optionalKey(Name),
  escalation: Schema.optionalKey(
    Schema.Struct({
      reason: Schema.String.pipe(Schema.check(Schema.isPattern(/^[A-Z][A-Z0-9_]{1,63}$/))),
      justification: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(2048)))
    })
  )
})
/** @see DeployModelBody */
export type DeployModelBody = typeof DeployModelBody.Type

/** Maps a decoded body to the admission's scope, input and requested resources / escalation. */
export const toAdmission = ({ body }: { readonly body: DeployModelBody }): Gate.AdmissionParts => ({
  scope: {
    environment: body.environment,
    ...(body.dataClassification !== undefined ? { dataClassification: body.dataClassification } : {})
  },
  input: { model: body.model },
  requested: {
    resources: body.resources,
    ...(body.escalation !== undefined ? { escalation: body.escalation } : {})
  }
})

/** The route options every adapter takes for this action (`governed(ACTION, deployModelRoute)`). */
export const deployModelRoute: Gate.RouteOptions<DeployModelBody> = { body: DeployModelBody, request: toAdmission }
