/**
 * Crash-test child of `ledgerCrash.ts`: opens a ledger backend once the parent writes a line to stdin (so it can start up while the parent
 * checks the previous run), then appends from many concurrent callers until it is killed. Each record's
 * `index hash` goes to stdout only after its append resolved: those lines are the acknowledgements the parent holds
 * the ledger to. argv: <backend module> <ledger file, or the backend's target such as a database URL>; env
 * EGL_TEST_PRIVATE_KEY: the checkpoint signing key. The backend module exports `layer(path, options)`.
 */
import { Effect, Layer } from "effect"
import { Ledger, Sealer } from "@egl/core"

const backend = (await import(process.argv[2]!)) as {
  readonly layer: (
    path: string,
    options: Ledger.LedgerOptions
  ) => Layer.Layer<Ledger.Ledger, Ledger.LedgerUnavailable, Sealer.Sealer>
}
const file = process.argv[3]!
/** Concurrent callers; each waits for its append before the next, so the service groups up to this many per write. */
const callers = 8
/** Stops appending after this many records so the ledger stays small over many runs; the parent kills earlier. */
const cap = 2000

const LedgerLive = backend
  .layer(file, { checkpointEvery: 200, checkpointIntervalMs: 25 })
  .pipe(Layer.provide(Sealer.Sealer.layer({ privateKeyPem: process.env["EGL_TEST_PRIVATE_KEY"] })))

const program = Effect.gen(function* () {
  const ledger = yield* Ledger.Ledger
  let issued = 0
  const caller = Effect.gen(function* () {
    while (issued < cap) {
      const n = issued++
      const body = JSON.stringify({ pid: process.pid, n, pad: "x".repeat(n % 97) })
      // Every fifth call appends three records atomically, so multi-record drafts share batches with single ones.
      const drafts =
        n % 5 === 0
          ? [0, 1, 2].map((k) =>
              Ledger.draft(
                "execution",
                new Date().toISOString(),
                `p${process.pid}-${n}`,
                `${body.slice(0, -1)},"k":${k}}`
              )
            )
          : [Ledger.draft("decision", new Date().toISOString(), `p${process.pid}-${n}`, body)]
      const placed = yield* ledger.appendAll(drafts)
      process.stdout.write(placed.map((r) => `${r.index} ${r.hash}\n`).join(""))
    }
  })
  yield* Effect.all(
    Array.from({ length: callers }, () => caller),
    { concurrency: "unbounded", discard: true }
  )
  yield* Effect.never
}).pipe(Effect.provide(LedgerLive))

process.stdin.once("data", () => {
  Effect.runPromise(program).catch((error) => {
    process.stderr.write(`child failed: ${String(error)}\n`)
    process.exit(1)
  })
})
// Without a go signal (the parent finished), leave quietly.
process.stdin.once("end", () => process.exit(0))
