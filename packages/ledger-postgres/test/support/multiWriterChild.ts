/**
 * One app instance of the multi-writer test: a core `Ledger` service over its own `PostgresLedger` on the shared
 * schema, with concurrent writers appending until the time is up. Once its stdout says `ready`, it starts when the
 * parent writes a line to stdin. Lines, each written only after its append settled:
 * - `ack <index> <hash> <id>`: a record acknowledged to its writer (`id` is unique to that record's body);
 * - `fail <ref>`: an append refused with `LedgerUnavailable` (the writer goes on with its next record);
 * - `stats <commits> <retries> <recovered>`: the storage's counters, after the service closed.
 * argv: <ledger URL with ?schema=> <application name> <writers> <duration ms>; env EGL_TEST_PRIVATE_KEY.
 */
import { Ledger, Sealer } from "@egl/core"
import { Effect } from "effect"
import { PostgresLedger } from "../../src/index.ts"

const [url, applicationName, writersArg, durationArg] = process.argv.slice(2)
const writers = Number(writersArg)
const durationMs = Number(durationArg)
const instance = `${applicationName}-${process.pid}`

const program = Effect.gen(function* () {
  const storage = yield* PostgresLedger.open(url!, { applicationName: applicationName!, pool: 3 })
  yield* Effect.scoped(
    Effect.gen(function* () {
      const ledger = yield* Ledger.make(storage, { checkpointEvery: 250, checkpointIntervalMs: 500 })
      const end = Date.now() + durationMs
      let issued = 0
      const writer = Effect.gen(function* () {
        while (Date.now() < end) {
          const n = issued++
          const ref = `${instance}-${n}`
          // Every fourth append is three records at once, sharing batches with single ones.
          const drafts = (n % 4 === 0 ? [0, 1, 2] : [0]).map((k) =>
            Ledger.draft("decision", new Date().toISOString(), ref, JSON.stringify({ id: `${ref}-${k}` }))
          )
          const exit = yield* Effect.exit(ledger.appendAll(drafts))
          process.stdout.write(
            exit._tag === "Success"
              ? exit.value.map((r, k) => `ack ${r.index} ${r.hash} ${ref}-${k}\n`).join("")
              : `fail ${ref}\n`
          )
        }
      })
      yield* Effect.all(
        Array.from({ length: writers }, () => writer),
        { concurrency: "unbounded", discard: true }
      )
    })
  )
  process.stdout.write(`stats ${storage.commits} ${storage.retries} ${storage.recovered}\n`)
}).pipe(Effect.scoped, Effect.provide(Sealer.Sealer.layer({ privateKeyPem: process.env["EGL_TEST_PRIVATE_KEY"] })))

process.stdout.write("ready\n")
process.stdin.once("data", () => {
  Effect.runPromise(program).then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`instance failed: ${String(error)}\n`)
      process.exit(1)
    }
  )
})
