/**
 * `egl envelope show <id> --ledger <ledger-url>`: a sealed envelope as the ledger stores it, whether it still matches
 * its seal, and its ledger history (decision, escalations, executions, incidents), for an auditor replaying one
 * decision. The ledger is opened read-only.
 *
 * The envelope is rebuilt from its decision record exactly as `Ledger.findEnvelope` does (the record's payload digest is
 * the envelope's snapshot id) and its seal is checked with `Envelope.verifySeal` on the stored object, so a changed,
 * added or removed field shows. Chain integrity around it is `egl ledger verify`'s job.
 * @module
 */
import { Envelope, type Ledger } from "@egl/core"
import { Effect, Schema } from "effect"
import * as Command from "./Command.ts"
import { cannotOpen, notFound, notIntact, usage, type CommandError } from "./CommandError.ts"
import { openReadOnly } from "./internal/ledgerSource.ts"

/** What to show. */
export interface Input {
  /** The envelope id. */
  readonly id: string
  /** A ledger URL: `file:<path>`, `sqlite:<path>` or `postgres://…?schema=<schema>`. */
  readonly ledger: string
}

/** One ledger record about the envelope. */
export interface HistoryEntry {
  readonly index: number
  readonly kind: Ledger.RecordKind
  readonly at: string
  readonly hash: string
  /** SHA-256 of the record's payload text. */
  readonly digest: string
  /** The record's payload, parsed (its text when it is not JSON); absent for the decision, whose payload is the envelope. */
  readonly payload?: unknown
}

/** A stored envelope and its history. */
export interface Result {
  readonly ledger: string
  /** The sealed envelope as stored (with its snapshot id). */
  readonly envelope: Envelope.ExecutionEnvelope
  /** Position of its decision record. */
  readonly position: { readonly index: number; readonly hash: string }
  /** Whether the stored envelope still matches its snapshot id. */
  readonly sealVerified: boolean
  /** Every record whose reference is the envelope id, in chain order (the decision first). */
  readonly history: ReadonlyArray<HistoryEntry>
}

const isEnvelope = Schema.is(Envelope.ExecutionEnvelope)

const payloadOf = (body: string): unknown => {
  try {
    return JSON.parse(body)
  } catch {
    return body
  }
}

/**
 * Finds the envelope `input.id` in the ledger. Fails with `not-found` when no decision record holds it, `not-intact`
 * when its decision record does not hold an envelope, `cannot-open` when the ledger cannot be read.
 */
export const show = (input: Input): Effect.Effect<Result, CommandError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const storage = yield* openReadOnly(input.ledger)
      const records = yield* storage
        .findRef(input.id)
        .pipe(Effect.mapError((e) => cannotOpen(`cannot read the ledger: ${e.detail}`)))
      const decision = records.find((r) => r.kind === "decision")
      if (decision === undefined) {
        return yield* notFound(
          records.length === 0
            ? `no envelope ${input.id} in ${storage.description}`
            : `no decision record for envelope ${input.id} in ${storage.description} (${records.length} other records name it)`
        )
      }
      const stored = payloadOf(decision.body)
      // The seal is checked on the object as stored: decoding first would drop an added field instead of showing it.
      const envelope =
        typeof stored === "object" && stored !== null
          ? Envelope.withSnapshotId(stored as Envelope.UnsealedEnvelope, decision.digest)
          : undefined
      if (envelope === undefined || !isEnvelope(envelope)) {
        return yield* notIntact(`record ${decision.index} (the decision about ${input.id}) does not hold an envelope`)
      }
      return {
        ledger: storage.description,
        envelope,
        position: { index: decision.index, hash: decision.hash },
        sealVerified: Envelope.verifySeal(envelope),
        history: records.map((r): HistoryEntry => {
          const entry = { index: r.index, kind: r.kind, at: r.at, hash: r.hash, digest: r.digest }
          return r === decision ? entry : { ...entry, payload: payloadOf(r.body) }
        })
      } satisfies Result
    })
  )

/** Payload fields worth a glance in the history list. */
const SUMMARY_KEYS = ["phase", "type", "outcome", "reason", "code", "statusCode", "outputDigest", "worker", "error"]

const summaryOf = (payload: unknown): string => {
  if (typeof payload !== "object" || payload === null) return ""
  const fields = payload as Record<string, unknown>
  return SUMMARY_KEYS.filter((k) => fields[k] !== undefined)
    .map((k) => `${k}=${typeof fields[k] === "string" ? fields[k] : JSON.stringify(fields[k])}`)
    .join(" ")
}

/** The human text of a result. */
export const render = (result: Result): string => {
  const e = result.envelope
  const lines: Array<string> = [`envelope ${e.id} in ${result.ledger}`]
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(10)} ${value}`)
  row("decision", `${e.decision.outcome} (${e.decision.reasonCodes.join(", ")}) at ${e.decision.decidedAt}`)
  row(
    "execution",
    `${e.execution.tool}.${e.execution.action}${e.execution.class === undefined ? "" : ` (class ${e.execution.class})`}`
  )
  row("subject", `${e.subject.id} (${e.subject.kind}; roles ${e.subject.roles.join(", ") || "none"})`)
  row(
    "scope",
    `${e.scope.environment}${e.scope.dataClassification === undefined ? "" : `, ${e.scope.dataClassification}`}`
  )
  if (e.granted !== undefined) {
    row(
      "granted",
      `tier ${e.granted.tier}, pool ${e.granted.pool}, resources ${JSON.stringify(e.granted.resources)}, expires ${e.granted.expiresAt}`
    )
  }
  row("state", e.state)
  row("policy", e.decision.policySnapshotId)
  row("snapshot", `${e.decision.snapshotId} (${result.sealVerified ? "seal verifies" : "SEAL DOES NOT VERIFY"})`)
  row("record", `#${result.position.index} ${result.position.hash}`)
  lines.push("history")
  for (const h of result.history) {
    const summary = summaryOf(h.payload)
    lines.push(`  #${String(h.index).padEnd(6)} ${h.kind.padEnd(10)} ${h.at}${summary === "" ? "" : `  ${summary}`}`)
  }
  if (!result.sealVerified) lines.push("the stored envelope does not match its snapshot id: it was altered")
  return `${lines.join("\n")}\n`
}

/** The `--json` document of a result. */
export const toJson = (result: Result): Record<string, unknown> => ({
  ledger: result.ledger,
  envelope: result.envelope,
  position: result.position,
  seal: { verified: result.sealVerified },
  history: result.history
})

const options = {
  ledger: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" }
} as const

/** The `egl envelope show` command. */
export const command: Command.Command = Command.make({
  path: ["envelope", "show"],
  synopsis: "<id> --ledger <ledger-url> [--json]",
  summary: "Show a sealed envelope as stored, whether its seal verifies, and its ledger history.",
  details: `Arguments:
  <id>                     the envelope id (as returned by admission, e.g. in the 201 body's envelope.id)

Options:
  --ledger <ledger-url>    file:<path>, sqlite:<path> or postgres://…?schema=<schema>; opened read-only (required)
  --json                   print one JSON document: { ok, ledger, envelope, position, seal, history }
  -h, --help               show this help

Exit codes: 0 found and its seal verifies, 1 its seal does not verify (the stored envelope was altered), 2 invalid
arguments, 3 cannot open the ledger, 4 no envelope with that id.`,
  body: (args) =>
    Effect.gen(function* () {
      const { values, positionals } = yield* Command.parse(args, options, { names: ["<id>"] })
      if (values.ledger === undefined) return yield* usage("missing --ledger <ledger-url>")
      const result = yield* show({ id: positionals[0]!, ledger: values.ledger })
      return { exitCode: result.sealVerified ? 0 : 1, json: toJson(result), text: render(result) }
    })
})
