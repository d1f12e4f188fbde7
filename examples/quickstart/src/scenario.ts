/**
 * The reference scenario of SPEC §11: `serving.deploy_model` (class `ai`, tier floor 2) under the demo policy — the
 * registry and policy the reference app (`apps/serving-api`) ships, run here in-process without HTTP.
 */
import * as Demo from "@egl/serving-api/demo"

/** One tool, `serving`, whose `deploy_model` action allocates GPUs and deploys a model. */
export const registry = Demo.registry

/** The demo policy. */
export const policy = Demo.policy
