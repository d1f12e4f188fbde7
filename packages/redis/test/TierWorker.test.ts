import type { Envelope } from "@egl/core"
import { Queue } from "bullmq"
import { afterEach, describe, expect, it } from "vitest"
import { TierQueues } from "../src/index.ts"
import { history, REDIS_URL } from "./support/fixtures.ts"
import { harness } from "./support/pools.ts"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})
const setup = async () => {
  const h = await harness()
  cleanups.push(h.close)
  expect(await h.queues.ready(5000)).toBe(true)
  return h
}

/** Puts a job on a tier's queue directly, as a compromised or buggy producer could. */
const enqueueRaw = async (prefix: string, tier: 0 | 1 | 2 | 3, data: unknown) => {
  const queue = new Queue(TierQueues.queueName(tier), { connection: { url: REDIS_URL }, prefix })
  try {
    const job = await queue.add("raw", data as never, { attempts: 1 })
    return String(job.id)
  } finally {
    await queue.close()
  }
}

/** Waits until a job has failed and returns its reason. */
const failedReason = async (prefix: string, tier: 0 | 1 | 2 | 3, jobId: string) => {
  const queue = new Queue(TierQueues.queueName(tier), { connection: { url: REDIS_URL }, prefix })
  try {
    const until = Date.now() + 5000
    while (Date.now() < until) {
      const job = await queue.getJob(jobId)
      if (job !== undefined && (await job.isFailed())) return job.failedReason
      await new Promise((r) => setTimeout(r, 20))
    }
    throw new Error(`job ${jobId} did not fail`)
  } finally {
    await queue.close()
  }
}

const incidentTypes = async (h: Awaited<ReturnType<typeof setup>>, id: string) =>
  (await history(h.egl, id)).filter((r) => r.kind === "incident").map((r) => r.type)

describe("a worker refuses what it must not run, and records the incident", () => {
  it("a forged (altered) envelope", async () => {
    const h = await setup()
    const worker = await h.startWorker(2)
    const envelope = await h.admit("network", { n: 1 })
    // More resources than granted, with the seal left as it was.
    const forged: Envelope.ExecutionEnvelope = {
      ...envelope,
      granted: { ...envelope.granted!, resources: { gpus: 64 } }
    }
    const result = await h.queues.submit(forged, { n: 1 })
    expect(!result.ok && result.error).toBeInstanceOf(TierQueues.DispatchRefused)
    expect(!result.ok && result.error).toMatchObject({ code: "ENVELOPE_INVALID", envelopeId: envelope.id })
    expect(!result.ok && result.error.message).toMatch(/altered or forged/)
    expect(h.calls.log).toEqual([])
    expect(await incidentTypes(h, envelope.id)).toEqual(["ENVELOPE_INVALID"])
    expect(worker.stats.refused).toEqual({ ENVELOPE_INVALID: 1 })

    // An extra key is an alteration too, though the Schema alone would strip it.
    const extra = { ...envelope, note: "hi" } as Envelope.ExecutionEnvelope
    expect(await h.queues.submit(extra, { n: 1 })).toMatchObject({ ok: false, code: "ENVELOPE_INVALID" })
    expect(h.calls.log).toEqual([])

    // The genuine envelope was never dispatched: its grant is still good.
    expect(await h.queues.submit(envelope, { n: 1 })).toMatchObject({ ok: true })
  })

  it("an expired envelope (a one-second grant, submitted after it)", async () => {
    const h = await setup()
    await h.startWorker(2)
    const envelope = await h.admit("brief", { n: 2 })
    const ttl = Date.parse(envelope.granted!.expiresAt) - Date.parse(envelope.decision.decidedAt)
    expect(ttl).toBe(1000)
    await new Promise((r) => setTimeout(r, ttl + 100))
    const result = await h.queues.submit(envelope, { n: 2 })
    expect(!result.ok && result.error).toMatchObject({ _tag: "DispatchRefused", code: "GRANT_EXPIRED" })
    expect(h.calls.log).toEqual([])
    expect(await incidentTypes(h, envelope.id)).toEqual(["GRANT_EXPIRED"])
  })

  it("a reused envelope (submitted twice)", async () => {
    const h = await setup()
    await h.startWorker(2)
    const envelope = await h.admit("network", { n: 3 })
    expect(await h.queues.submit(envelope, { n: 3 })).toMatchObject({ ok: true })
    const again = await h.queues.submit(envelope, { n: 3 })
    expect(!again.ok && again.error).toMatchObject({ _tag: "DispatchRefused", code: "GRANT_REUSED" })
    expect(h.calls.log).toHaveLength(1)
    expect((await history(h.egl, envelope.id)).map((r) => r.type ?? r.phase ?? r.kind)).toEqual([
      "decision",
      "dispatched",
      "completed",
      "GRANT_REUSED"
    ])

    // Submitted twice at once: exactly one runs.
    const twice = await h.admit("network", { n: 4 })
    const results = await Promise.all([h.queues.submit(twice, { n: 4 }), h.queues.submit(twice, { n: 4 })])
    expect(results.filter((r) => r.ok)).toHaveLength(1)
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.code)).toEqual(["GRANT_REUSED"])
    expect(h.calls.log).toHaveLength(2)
  })

  it("a wrong-tier envelope (a tier-2 envelope put on the tier-3 queue)", async () => {
    const h = await setup()
    const worker3 = await h.startWorker(3)
    const envelope = await h.admit("network", { n: 5 })
    expect(envelope.granted?.pool).toBe("pool-t2")
    const jobId = await enqueueRaw(h.prefix, 3, {
      v: 1,
      envelope,
      input: { n: 5 },
      deadline: Date.now() + 10_000
    })
    expect(await failedReason(h.prefix, 3, jobId)).toMatch(/^ENVELOPE_INVALID: .*granted pool-t2, not pool-t3/)
    expect(h.calls.log).toEqual([])
    expect(worker3.stats.refused).toEqual({ ENVELOPE_INVALID: 1 })
    expect(await incidentTypes(h, envelope.id)).toEqual(["ENVELOPE_INVALID"])

    // On its own tier it runs: the refusal did not use the grant.
    await h.startWorker(2)
    expect(await h.queues.submit(envelope, { n: 5 })).toMatchObject({ ok: true, output: { tier: 2 } })
  })

  it("a job whose input is not the admitted input, and a job without an envelope", async () => {
    const h = await setup()
    const worker = await h.startWorker(2)
    const envelope = await h.admit("network", { amount: 10 })
    const swapped = await enqueueRaw(h.prefix, 2, {
      v: 1,
      envelope,
      input: { amount: 10_000 },
      deadline: Date.now() + 10_000
    })
    expect(await failedReason(h.prefix, 2, swapped)).toMatch(/^ENVELOPE_INVALID: .*not the admitted input/)
    expect(await incidentTypes(h, envelope.id)).toEqual(["ENVELOPE_INVALID"])

    const garbage = await enqueueRaw(h.prefix, 2, { v: 1, envelope: { id: "made-up" }, input: null, deadline: 0 })
    expect(await failedReason(h.prefix, 2, garbage)).toMatch(/^ENVELOPE_INVALID: the job does not carry/)
    expect(await incidentTypes(h, "made-up")).toEqual(["ENVELOPE_INVALID"])
    expect(h.calls.log).toEqual([])
    expect(worker.stats.refused).toEqual({ ENVELOPE_INVALID: 2 })
    expect((await h.egl.verifyLedger()).ok).toBe(true)
  })

  it("a worker without a handler for the action records a failed execution", async () => {
    const h = await setup()
    await h.startWorker(1, { handlers: {} })
    const envelope = await h.admit("file", { n: 6 })
    const result = await h.queues.submit(envelope, { n: 6 })
    expect(!result.ok && result.error).toMatchObject({ _tag: "ExecutionFailed", code: "EXECUTION_FAILED" })
    expect(!result.ok && result.error.message).toMatch(/no handler for jobs\.file/)
    expect((await history(h.egl, envelope.id)).map((r) => r.phase ?? r.kind)).toEqual([
      "decision",
      "dispatched",
      "failed"
    ])
  })
})
