/**
 * Ledger benchmarks: appends/s through the `Ledger` service (single awaited appends, and group commit of many
 * concurrent appends) and chain verification records/s, over the memory storage and the SQLite backend.
 *
 * Drafts are prepared before timing (`Ledger.draft`: a ~1 KB canonical envelope body and its SHA-256); what is timed is
 * the service: chain linking (record hash), the write and its commit, and answering the caller.
 */
import { Effect, Layer, ManagedRuntime, type Scope } from "effect"
import { Ledger, Sealer } from "@egl/core"
import { collect, median, now, secondsSince } from "./stats.ts"

type LedgerService = Ledger.Ledger["Service"]

/** A ledger service under a runtime that owns its storage. */
export interface OpenLedger {
  readonly ledger: LedgerService
  readonly close: () => Promise<void>
}

/** Opens a ledger service over an acquired storage (memory or any backend), with a generated signing key. */
export const openLedger = async <E>(
  acquire: Effect.Effect<Ledger.LedgerStorage, E, Scope.Scope> | "memory",
  options?: Ledger.LedgerOptions
): Promise<OpenLedger> => {
  const layer = acquire === "memory" ? Ledger.Ledger.layerMemory(options) : Ledger.Ledger.layerStorage(acquire, options)
  const runtime = ManagedRuntime.make(layer.pipe(Layer.provide(Sealer.Sealer.layerGenerated)))
  const ledger = await runtime.runPromise(Ledger.Ledger.use((l) => Effect.succeed(l)))
  return { ledger, close: () => runtime.dispose() }
}

/** Makes `count` decision drafts whose bodies are `template` with the envelope id varied per record. */
export const makeDrafts = (
  template: { readonly body: string; readonly id: string; readonly at: string },
  from: number,
  count: number
): Array<Ledger.RecordDraft> => {
  const parts = template.body.split(template.id)
  const prefix = template.id.slice(0, template.id.length - 12)
  const out: Array<Ledger.RecordDraft> = new Array(count)
  for (let i = 0; i < count; i++) {
    const id = prefix + (from + i).toString(16).padStart(12, "0")
    out[i] = Ledger.draft("decision", template.at, id, parts.join(id))
  }
  return out
}

/** Sequential appends, each awaited before the next, for about `seconds`: records/s. */
export const sequentialAppends = async (
  ledger: LedgerService,
  drafts: ReadonlyArray<Ledger.RecordDraft>,
  seconds: number
): Promise<number> => {
  let i = 0
  const t0 = now()
  const deadline = t0 + BigInt(Math.round(seconds * 1e9))
  // The loop runs inside one fiber: what is timed is the ledger, not the Promise bridge per call.
  await Effect.runPromise(
    Effect.gen(function* () {
      while (now() < deadline) {
        for (let k = 0; k < 64; k++) yield* ledger.append(drafts[i++ % drafts.length]!)
      }
    })
  )
  return i / secondsSince(t0)
}

/** `drafts.length` appends started at once by independent callers (group commit): records/s. */
export const concurrentAppends = async (
  ledger: LedgerService,
  drafts: ReadonlyArray<Ledger.RecordDraft>
): Promise<number> => {
  const t0 = now()
  await Promise.all(drafts.map((d) => Effect.runPromise(ledger.append(d))))
  return drafts.length / secondsSince(t0)
}

/** Fills a ledger with `total` records in batches (the service's `appendAll`). */
export const fill = async (
  ledger: LedgerService,
  template: Parameters<typeof makeDrafts>[0],
  total: number,
  batch = 4096
): Promise<void> => {
  for (let from = 0; from < total; from += batch) {
    const drafts = makeDrafts(template, 1_000_000 + from, Math.min(batch, total - from))
    await Effect.runPromise(ledger.appendAll(drafts))
  }
}

/** Verifies the whole chain `reps` times: median records/s, and the last report. */
export const verifyRate = async (
  ledger: LedgerService,
  reps: number
): Promise<{ readonly rate: number; readonly rates: ReadonlyArray<number>; readonly report: Ledger.VerifyReport }> => {
  const rates: Array<number> = []
  let report: Ledger.VerifyReport | undefined
  for (let r = 0; r < reps; r++) {
    collect()
    const t0 = now()
    report = await Effect.runPromise(ledger.verify())
    rates.push(report.length / secondsSince(t0))
    if (!report.ok) throw new Error(`verification failed: ${JSON.stringify(report)}`)
  }
  return { rate: median(rates), rates, report: report! }
}
