/**
 * An API side and workers in one process, sharing one governance instance (so one ledger and one grant store), on a
 * queue prefix of their own.
 */
import { createGovernance, type ExecutionClass, type GovernanceInstance, type PolicyEngine } from "@egl/core"
import { TierQueues, TierWorker } from "../../src/index.ts"
import { deleteKeys, policy, REDIS_URL, registry, request, uniquePrefix } from "./fixtures.ts"

/** What the handlers of a test saw. */
export interface Calls {
  /** `pool action input` per call, in start order. */
  readonly log: Array<string>
  inFlight: number
  maxInFlight: number
}

/** Handlers for every `jobs.*` action: echo the input with the worker's pool, `slowMs` to hold a slot, `fail` to throw. */
export const handlers = (calls: Calls): Record<string, TierWorker.Handler> => {
  const run: TierWorker.Handler = async (input, { envelope, worker }) => {
    const i = (input ?? {}) as { slowMs?: number; fail?: string }
    calls.log.push(`${worker.split("/").pop()} ${envelope.execution.action} ${JSON.stringify(input)}`)
    calls.inFlight++
    calls.maxInFlight = Math.max(calls.maxInFlight, calls.inFlight)
    try {
      if (i.slowMs !== undefined) await new Promise((r) => setTimeout(r, i.slowMs))
      if (i.fail !== undefined) throw new Error(i.fail)
      return { echo: input, tier: envelope.granted?.tier, by: worker }
    } finally {
      calls.inFlight--
    }
  }
  return Object.fromEntries(["transform", "file", "network", "privileged", "brief"].map((a) => [`jobs.${a}`, run]))
}

/** A test harness: governance, queues, and workers started on demand; `close` stops everything and deletes the keys. */
export const harness = async (options?: {
  readonly queues?: TierQueues.Options
  readonly policy?: PolicyEngine.PolicyInput
  /** Mirror the queues' breakers into the governance instance's router. */
  readonly mirror?: boolean
}) => {
  const prefix = uniquePrefix("pools")
  const egl: GovernanceInstance = await createGovernance({
    registry,
    policy: options?.policy ?? policy,
    ledgerOptions: { checkpointIntervalMs: 0 }
  })
  const queues = TierQueues.make({
    url: REDIS_URL,
    prefix,
    timeoutMs: 10_000,
    ...(options?.mirror === true ? { governance: egl } : {}),
    ...options?.queues
  })
  const workers: Array<TierWorker.TierWorker> = []
  const extraQueues: Array<TierQueues.TierQueues> = []
  const calls: Calls = { log: [], inFlight: 0, maxInFlight: 0 }

  const startWorker = async (tier: ExecutionClass.Tier, extra?: Partial<TierWorker.StartOptions>) => {
    const worker = await TierWorker.start({
      governance: egl,
      tier,
      handlers: handlers(calls),
      url: REDIS_URL,
      prefix,
      ...extra
    })
    workers.push(worker)
    return worker
  }

  const admit = async (action: string, input: unknown) => {
    const admitted = await egl.admit(request(action, input))
    if (!admitted.ok) throw new Error(`expected an admission, got ${admitted.reasonCodes.join(",")}`)
    return admitted.envelope
  }

  return {
    prefix,
    egl,
    queues,
    calls,
    startWorker,
    admit,
    /** More producers on the same prefix (e.g. through a proxy); closed with the harness. */
    producer: (opts: TierQueues.Options) => {
      const q = TierQueues.make({ prefix, ...opts })
      extraQueues.push(q)
      return q
    },
    close: async () => {
      await Promise.all(workers.map((w) => w.close()))
      await Promise.all([queues.close(), ...extraQueues.map((q) => q.close())])
      await egl.close()
      await deleteKeys(`${prefix}:*`)
    }
  }
}
