/**
 * Opens a ledger named by a ledger URL for reading only: nothing is created, migrated, locked or written, so it is
 * safe beside the running app. Every reason it cannot be opened is a "cannot open" failure (exit 3).
 */
import { existsSync } from "node:fs"
import { FileLedger, type Ledger, LedgerUrl } from "@egl/core"
import { PostgresLedger } from "@egl/ledger-postgres"
import { SqliteLedger } from "@egl/ledger-sqlite"
import { Effect, type Scope } from "effect"
import { cannotOpen, type CommandError } from "../CommandError.ts"

/** The storage of the ledger at `url`, opened read-only and closed with the scope. */
export const openReadOnly = (url: string): Effect.Effect<Ledger.LedgerStorage, CommandError, Scope.Scope> =>
  Effect.gen(function* () {
    const parsed = yield* LedgerUrl.parse(url).pipe(Effect.mapError((e) => cannotOpen(e.message)))
    switch (parsed.kind) {
      case "memory":
        return yield* cannotOpen(
          "a memory ledger lives only inside the process that writes it: nothing to open " +
            "(use file:<path>, sqlite:<path> or postgres://…)"
        )
      case "postgres":
        // The schema comes from the URL's `schema` parameter (default `public`); its sessions are read-only.
        return yield* PostgresLedger.open(parsed.url, { readOnly: true, applicationName: "egl-cli", pool: 2 }).pipe(
          Effect.mapError((e) => cannotOpen(`cannot open the ledger: ${e.detail}`))
        )
      case "file":
      case "sqlite": {
        if (!existsSync(parsed.path)) return yield* cannotOpen(`no ledger at ${LedgerUrl.describe(parsed)}`)
        const open =
          parsed.kind === "file"
            ? FileLedger.open(parsed.path, { readOnly: true })
            : SqliteLedger.open(parsed.path, { readOnly: true })
        return yield* open.pipe(Effect.mapError((e) => cannotOpen(`cannot open the ledger: ${e.detail}`)))
      }
    }
  })
