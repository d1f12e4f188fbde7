/**
 * What an admitted deployment does. The reference app deploys nothing real: it answers the deployment it would make
 * from the granted resources (never the requested ones), so the scenario shows least privilege end to end. The same
 * function runs in the API process (local pools) and on a tier worker (BullMQ pools).
 * @module
 */
import type { Envelope } from "@egl/core"

/** The deployment made for an admitted envelope. */
export interface Deployment {
  readonly deploymentId: string
  readonly model: unknown
  readonly tier: number
  readonly pool: string
  readonly resources: Readonly<Record<string, unknown>>
}

/** Deploys (simulated) what the envelope grants. */
export const deploy = (envelope: Envelope.ExecutionEnvelope, input: unknown): Deployment => ({
  deploymentId: `dep-${envelope.id.slice(-12)}`,
  model: (input as { model?: unknown } | undefined)?.model ?? null,
  tier: envelope.granted!.tier,
  pool: envelope.granted!.pool,
  resources: envelope.granted!.resources
})
