/**
 * `GET /dashboard`: a first, plain HTML page of the most recent decisions in the ledger (newest first), with the
 * ledger's length and verification state. Every value from the ledger is HTML-escaped; the page has no script.
 * @module
 */
import type { GovernanceInstance, Ledger } from "@egl/core"

const escape = (value: unknown): string => String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

interface DecisionRow {
  readonly index: number
  readonly at: string
  readonly id: string
  readonly principal: string
  readonly action: string
  readonly environment: string
  readonly outcome: string
  readonly reasonCodes: string
  readonly tier: string
}

const rowOf = (record: Ledger.LedgerRecord): DecisionRow | undefined => {
  try {
    const e = JSON.parse(record.body) as {
      id?: string
      subject?: { id?: string }
      execution?: { tool?: string; action?: string }
      scope?: { environment?: string }
      decision?: { outcome?: string; reasonCodes?: ReadonlyArray<string> }
      granted?: { tier?: number }
    }
    return {
      index: record.index,
      at: record.at,
      id: e.id ?? record.ref,
      principal: e.subject?.id ?? "",
      action: `${e.execution?.tool ?? ""}.${e.execution?.action ?? ""}`,
      environment: e.scope?.environment ?? "",
      outcome: e.decision?.outcome ?? "",
      reasonCodes: (e.decision?.reasonCodes ?? []).join(", "),
      tier: e.granted?.tier === undefined ? "–" : String(e.granted.tier)
    }
  } catch {
    return undefined
  }
}

/** The most recent decision records (at most `limit`, newest first), scanning back at most `window` records. */
export const recentDecisions = async (
  governance: GovernanceInstance,
  limit = 50,
  window = 1000
): Promise<ReadonlyArray<DecisionRow>> => {
  const { size } = await governance.head()
  const from = Math.max(0, size - window)
  const records = await governance.records(from, size - from)
  const rows: Array<DecisionRow> = []
  for (let i = records.length - 1; i >= 0 && rows.length < limit; i--) {
    const r = records[i]!
    if ("_corrupt" in r || r.kind !== "decision") continue
    const row = rowOf(r)
    if (row !== undefined) rows.push(row)
  }
  return rows
}

/** Renders the dashboard page. */
export const render = async (governance: GovernanceInstance): Promise<string> => {
  const [rows, head] = await Promise.all([recentDecisions(governance), governance.head()])
  const body = rows
    .map(
      (r) =>
        `<tr class="${escape(r.outcome)}"><td>${r.index}</td><td>${escape(r.at)}</td>` +
        `<td><a href="/envelopes/${encodeURIComponent(r.id)}">${escape(r.id)}</a></td><td>${escape(r.principal)}</td>` +
        `<td>${escape(r.action)}</td><td>${escape(r.environment)}</td><td>${escape(r.outcome)}</td>` +
        `<td>${escape(r.tier)}</td><td>${escape(r.reasonCodes)}</td></tr>`
    )
    .join("\n")
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>EGL — recent decisions</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222 }
table { border-collapse: collapse; width: 100% }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; font-variant-numeric: tabular-nums }
tr.denied td:nth-child(7) { color: #b00020; font-weight: 600 }
tr.admitted td:nth-child(7) { color: #006d32; font-weight: 600 }
</style>
</head>
<body>
<h1>Recent decisions</h1>
<p>Ledger: ${head.size} records, head <code>${escape(head.hash.slice(0, 16))}…</code> ·
<a href="/ledger/verify">verify</a> · <a href="/metrics">metrics</a></p>
<table>
<thead><tr><th>#</th><th>time</th><th>envelope</th><th>principal</th><th>action</th><th>env</th><th>outcome</th><th>tier</th><th>reason codes</th></tr></thead>
<tbody>
${body || '<tr><td colspan="9">No decisions yet.</td></tr>'}
</tbody>
</table>
</body>
</html>
`
}
