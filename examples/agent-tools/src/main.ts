/**
 * Agent tools: an AI agent's tool calls across the five execution classes, governed by EGL. Prints what the pipeline
 * decided for every call, how often each task really ran, and the ledger verification.
 *
 *   pnpm start                                   # memory ledger
 *   EGL_LEDGER=file:.data/ledger.jsonl pnpm start
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { Sealer } from "@egl/core"
import { runAgent, type AgentOptions, type Row } from "./agent.ts"

const optionsOf = (spec: string | undefined): AgentOptions => {
  if (spec === undefined || spec === "memory") return { ledger: "memory" }
  if (!spec.startsWith("file:") || spec.length === 5) {
    throw new Error(`EGL_LEDGER must be "memory" or "file:<path>", got "${spec}"`)
  }
  const file = spec.slice(5)
  mkdirSync(dirname(file), { recursive: true })
  // The ledger outlives the process, so its checkpoints must verify on the next run too: keep the signing key beside
  // it (production loads it from a secret store).
  const keyFile = `${file}.signing-key.pem`
  if (!existsSync(keyFile)) writeFileSync(keyFile, Sealer.generateKeyPair().privateKeyPem, { mode: 0o600 })
  return { ledger: { file }, keys: { privateKeyPem: readFileSync(keyFile, "utf8") } }
}

const summary = await runAgent(optionsOf(process.env.EGL_LEDGER))

const columns: ReadonlyArray<readonly [string, (r: Row) => string]> = [
  ["class", (r) => r.executionClass ?? "-"],
  ["tool.action", (r) => r.toolAction],
  ["for", (r) => r.onBehalfOf],
  ["call", (r) => r.description],
  ["outcome", (r) => r.outcome],
  ["reason codes", (r) => r.reasonCodes.join(",")],
  ["tier", (r) => (r.tier === undefined ? "-" : String(r.tier))],
  ["cached", (r) => (r.cached ? "yes" : "no")],
  ["rules", (r) => r.matchedRules.join(",") || "-"]
]
const cells = summary.rows.map((r) => columns.map(([, cell]) => cell(r)))
const widths = columns.map(([title], i) => Math.max(title.length, ...cells.map((c) => c[i]!.length)))
const line = (values: ReadonlyArray<string>) =>
  values
    .map((v, i) => v.padEnd(widths[i]!))
    .join("  ")
    .trimEnd()
console.log(line(columns.map(([title]) => title)))
console.log(line(widths.map((w) => "-".repeat(w))))
for (const c of cells) console.log(line(c))

console.log(
  "\ntask runs:",
  Object.entries(summary.taskRuns)
    .map(([k, n]) => `${k}=${n}`)
    .join(" ")
)
for (const r of summary.rows) {
  if (r.outcome === "denied") console.log(`denied (${r.id}): ${r.rationale ?? "-"}`)
  // A refused replay carries its admission's escalation; it was approved once, on the row that executed.
  if (r.approvedEscalation !== undefined && r.outcome !== "refused") {
    const e = r.approvedEscalation
    console.log(
      `escalation approved (${r.id}): ${e.reason} tier ${e.fromTier} → ${e.toTier} for ${e.capabilities.join(",")} by rule "${e.approvedBy}"`
    )
  }
}
const { ok, length, firstBadIndex, checkpointsVerified } = summary.ledger
console.log(
  `ledger verification: ok=${ok} records=${length} checkpoints=${checkpointsVerified}` +
    (firstBadIndex !== undefined ? ` firstBadIndex=${firstBadIndex}` : "")
)
if (!ok) process.exitCode = 1
