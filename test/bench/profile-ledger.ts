/**
 * Variants of the ledger loops for profiling (not part of `pnpm bench`; run through bench/profile.ts):
 *   group-commit  — waves of 20 000 concurrent appends to a SQLite ledger, for the given time
 *   verify-sqlite — repeated verification of a 200 000-record SQLite ledger, for the given time
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { createGovernance, Canonical } from "@egl/core"
import { SqliteLedger } from "@egl/ledger-sqlite"
import { policy, registry } from "../../packages/core/test/fixtures/scenario.ts"
import { concurrentAppends, fill, makeDrafts, openLedger } from "./ledger.ts"
import { mix, toRequest } from "./mix.ts"

const mode = process.argv[2] ?? "group-commit"
const seconds = Number(process.argv[3] ?? 10)

// A realistic body: the canonical form of an admitted envelope of the scenario.
const egl = await createGovernance({
  registry,
  policy,
  ledger: "memory",
  ledgerOptions: { checkpointIntervalMs: 0 },
  logger: false
})
const admitted = await egl.admit(toRequest(mix[0]!))
await egl.close()
if (!admitted.ok) throw new Error("the first request of the mix should be admitted")
const { ledger: _ledger, ...unsealed } = admitted.envelope
const template = { body: Canonical.toCanonicalJsonSync(unsealed), id: unsealed.id, at: unsealed.decision.decidedAt }

const dir = mkdtempSync(join(tmpdir(), "egl-prof-ledger-"))
try {
  const l = await openLedger(SqliteLedger.open(join(dir, "ledger.db")), { checkpointIntervalMs: 0 })
  const deadline = performance.now() + seconds * 1000
  let n = 0
  if (mode === "group-commit") {
    const drafts = makeDrafts(template, 0, 20_000)
    while (performance.now() < deadline) {
      await concurrentAppends(l.ledger, drafts)
      n += drafts.length
    }
    console.log(`${n} records appended in ${seconds} s`)
  } else {
    await fill(l.ledger, template, 200_000)
    const start = performance.now()
    while (performance.now() < start + seconds * 1000) {
      const report = await Effect.runPromise(l.ledger.verify())
      n += report.length
    }
    console.log(`${n} records verified in ${seconds} s`)
  }
  await l.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
