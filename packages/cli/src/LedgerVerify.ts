/**
 * `egl ledger verify <ledger-url>`: verifies a ledger's hash chain and signed checkpoints with only public keys
 * (SPEC §9), and reports the first bad index on any tampering.
 *
 * The ledger is opened read-only (see the `FileLedger`, `SqliteLedger` and `PostgresLedger` read-only opens): nothing
 * is created or locked, so it runs beside the app, and it verifies the records present when it starts (a PostgreSQL
 * ledger: one snapshot, streamed through a cursor). Each stored checkpoint (and a checkpoint retained elsewhere,
 * `--checkpoint`) must match the chain at its size, which also catches a cut tail.
 * With `--public-key` every checkpoint must be signed by one of the keys; without, signatures are not checked and the
 * report says so.
 * @module
 */
import { createPublicKey } from "node:crypto"
import { Ledger } from "@egl/core"
import { Effect, Schema } from "effect"
import * as Command from "./Command.ts"
import { cannotOpen, invalidInput, type CommandError } from "./CommandError.ts"
import { readJson, readText } from "./internal/inputFile.ts"
import { openReadOnly } from "./internal/ledgerSource.ts"

/** What to verify. */
export interface Input {
  /** A ledger URL: `file:<path>`, `sqlite:<path>` or `postgres://…?schema=<schema>`. */
  readonly ledger: string
  /** PEM files of the public keys that may have signed checkpoints (a private key file yields its public half). */
  readonly publicKeyFiles?: ReadonlyArray<string> | undefined
  /** JSON file of a checkpoint retained outside the ledger (`Ledger.Checkpoint`). */
  readonly checkpointFile?: string | undefined
}

/** The verification report of a ledger. */
export interface Result {
  /** The ledger, as its URL describes it. */
  readonly ledger: string
  readonly report: Ledger.VerifyReport
  /** `not-checked` when no public key was given: checkpoints were checked for size and head hash only. */
  readonly signatures: "verified" | "not-checked"
  /** Number of public keys given. */
  readonly publicKeys: number
  /** The retained checkpoint that was checked too, if any. */
  readonly trustedCheckpoint: Ledger.Checkpoint | undefined
  /** The largest checkpoint stored in the ledger: retain it elsewhere to catch a later cut of the tail. */
  readonly lastCheckpoint: Ledger.Checkpoint | undefined
}

/** Reads a public key file; anything but an Ed25519 key (public, or private to take its public half) is invalid. */
const readPublicKey = (path: string): Effect.Effect<string, CommandError> =>
  Effect.gen(function* () {
    const pem = yield* readText(path, "public key file")
    const key = yield* Effect.try({
      try: () => createPublicKey(pem),
      catch: () => invalidInput(`public key file ${path} does not hold a PEM key`)
    })
    if (key.asymmetricKeyType !== "ed25519") {
      return yield* invalidInput(
        `public key file ${path} holds an ${key.asymmetricKeyType} key; checkpoints are signed with Ed25519`
      )
    }
    return key.export({ type: "spki", format: "pem" }).toString()
  })

const decodeCheckpoint = Schema.decodeUnknownEffect(Ledger.Checkpoint)

const readCheckpoint = (path: string): Effect.Effect<Ledger.Checkpoint, CommandError> =>
  Effect.flatMap(readJson(path, "checkpoint file"), (value) =>
    decodeCheckpoint(value).pipe(
      Effect.mapError((e) => invalidInput(`checkpoint file ${path} does not hold a checkpoint: ${e.message}`))
    )
  )

/**
 * Verifies the ledger at `input.ledger`. Fails with a {@link CommandError} when a file or the ledger cannot be read;
 * a ledger that does not verify is a result (`report.ok === false`), not a failure.
 *
 * @example
 * ```ts
 * const result = await Effect.runPromise(LedgerVerify.verify({ ledger: "sqlite:ledger.db", publicKeyFiles: ["egl.pub"] }))
 * if (!result.report.ok) console.log(result.report.firstBadIndex, result.report.failure)
 * ```
 */
export const verify = (input: Input): Effect.Effect<Result, CommandError> =>
  Effect.scoped(
    Effect.gen(function* () {
      const keys = yield* Effect.forEach(input.publicKeyFiles ?? [], readPublicKey)
      const trustedCheckpoint =
        input.checkpointFile === undefined ? undefined : yield* readCheckpoint(input.checkpointFile)
      const storage = yield* openReadOnly(input.ledger)
      const unreadable = (e: Ledger.LedgerUnavailable) => cannotOpen(`cannot read the ledger: ${e.detail}`)
      // Read before verifying: with a writer appending meanwhile, this checkpoint is within the verified prefix.
      const stored = yield* storage.checkpoints.pipe(Effect.mapError(unreadable))
      const report = yield* Ledger.verifyStorage(storage, keys, {
        trustedCheckpoint,
        signatures: keys.length === 0 ? "skip" : "verify"
      }).pipe(Effect.mapError(unreadable))
      const lastCheckpoint = stored.reduce<Ledger.Checkpoint | undefined>(
        (max, cp) => (max === undefined || cp.size > max.size ? cp : max),
        undefined
      )
      return {
        ledger: storage.description,
        report,
        signatures: keys.length === 0 ? "not-checked" : "verified",
        publicKeys: keys.length,
        trustedCheckpoint,
        lastCheckpoint
      } satisfies Result
    })
  )

const NO_KEY = "signatures not checked: no --public-key"

/** The human text of a result. */
export const render = (result: Result): string => {
  const { report } = result
  const lines: Array<string> = []
  const row = (label: string, value: string | number) => lines.push(`  ${label.padEnd(12)} ${value}`)
  if (report.ok) {
    lines.push(`${result.ledger}: intact`)
    row("records", report.length)
    row("head", report.headHash)
    const checkpoints = report.checkpointsVerified
    if (checkpoints === 0) {
      row("checkpoints", "none (a cut tail cannot be detected; retain a checkpoint and pass --checkpoint)")
    } else {
      row(
        "checkpoints",
        `${checkpoints} verified${result.trustedCheckpoint === undefined ? "" : " (including --checkpoint)"}` +
          (result.signatures === "verified"
            ? `, signed by a trusted key (${result.publicKeys} given)`
            : ", size and head hash only")
      )
    }
    if (result.lastCheckpoint !== undefined) {
      const cp = result.lastCheckpoint
      row("last", `checkpoint at size ${cp.size}, ${cp.at}, key ${cp.keyId}`)
    }
  } else {
    lines.push(`${result.ledger}: NOT INTACT`)
    row("first bad", report.firstBadIndex ?? "?")
    row("failure", report.failure ?? "?")
    if (report.detail !== undefined) row("detail", report.detail)
    row("records", `${report.length} present`)
  }
  if (result.signatures === "not-checked") lines.push(NO_KEY)
  return `${lines.join("\n")}\n`
}

/** The `--json` document of a result. */
export const toJson = (result: Result): Record<string, unknown> => {
  const { report } = result
  return {
    ledger: result.ledger,
    length: report.length,
    ...(report.ok ? {} : { firstBadIndex: report.firstBadIndex, failure: report.failure, detail: report.detail }),
    headHash: report.headHash,
    checkpointsVerified: report.checkpointsVerified,
    signatures: result.signatures,
    ...(result.signatures === "not-checked" ? { note: NO_KEY } : {}),
    publicKeys: result.publicKeys,
    ...(result.trustedCheckpoint === undefined ? {} : { trustedCheckpoint: result.trustedCheckpoint }),
    ...(result.lastCheckpoint === undefined ? {} : { lastCheckpoint: result.lastCheckpoint })
  }
}

const options = {
  "public-key": { type: "string", multiple: true },
  checkpoint: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" }
} as const

/** The `egl ledger verify` command. */
export const command: Command.Command = Command.make({
  path: ["ledger", "verify"],
  synopsis: "<ledger-url> [--public-key <pem-file>]... [--checkpoint <json-file>] [--json]",
  summary: "Verify a ledger's hash chain and signed checkpoints; report the first bad index.",
  details: `Arguments:
  <ledger-url>                 file:<path> (JSONL), sqlite:<path> or postgres://user@host:port/db?schema=<schema>
                               (schema default public); opened read-only, never created, migrated or locked

Options:
  --public-key <pem-file>      Ed25519 public key that may have signed checkpoints (repeat for rotated keys);
                               without one, checkpoint signatures are not checked (and the report says so)
  --checkpoint <json-file>     a checkpoint retained outside the ledger ({ size, headHash, at, keyId, signature });
                               catches a cut tail even when the stored checkpoints were cut too
  --json                       print one JSON document (its lastCheckpoint is what to retain for --checkpoint)
  -h, --help                   show this help

Exit codes: 0 intact, 1 not intact (first bad index, failure and detail printed), 2 invalid arguments, key or
checkpoint, 3 cannot open (missing ledger, bad or unsupported URL, database unreachable, I/O error).

Examples:
  egl ledger verify sqlite:.data/ledger.db --public-key egl-signing.pub
  egl ledger verify 'postgres://auditor@db:5432/egl?schema=egl' --public-key egl-signing.pub`,
  body: (args) =>
    Effect.gen(function* () {
      const { values, positionals } = yield* Command.parse(args, options, { names: ["<ledger-url>"] })
      const result = yield* verify({
        ledger: positionals[0]!,
        publicKeyFiles: values["public-key"],
        checkpointFile: values.checkpoint
      })
      return { exitCode: result.report.ok ? 0 : 1, json: toJson(result), text: render(result) }
    })
})
