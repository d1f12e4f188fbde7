/**
 * How a command fails, and the exit code each failure maps to. The codes are part of the CLI's contract: scripts rely
 * on them, so they only ever gain members.
 *
 * | exit | meaning |
 * |---|---|
 * | 0 | ok (the ledger is intact, the envelope's seal verifies, …) |
 * | 1 | the ledger is not intact (or a stored envelope does not match its seal) |
 * | 2 | usage error or invalid input: bad arguments, invalid JSON, invalid policy, invalid key or checkpoint |
 * | 3 | cannot open: missing file, invalid or unsupported ledger URL, I/O error |
 * | 4 | not found: no envelope with that id |
 * | 70 | internal error (a bug in egl) |
 * @module
 */
import { Schema } from "effect"

/** Exit codes of the `egl` command. */
export const ExitCode = {
  Ok: 0,
  NotIntact: 1,
  Usage: 2,
  CannotOpen: 3,
  NotFound: 4,
  Internal: 70
} as const
/** @see ExitCode */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/** Machine-readable failure codes, as `--json` prints them in `error.code`. */
export const ErrorCode = Schema.Literals([
  "usage",
  "invalid-input",
  "cannot-open",
  "not-found",
  "not-intact",
  "internal"
])
/** @see ErrorCode */
export type ErrorCode = typeof ErrorCode.Type

/** A command could not do what it was asked; `detail` is the message shown to the user (never a secret). */
export class CommandError extends Schema.TaggedError<CommandError>()("CommandError", {
  code: ErrorCode,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/** The exit code of a failure code. */
export const exitCodeOf = (code: ErrorCode): ExitCode => {
  switch (code) {
    case "usage":
    case "invalid-input":
      return ExitCode.Usage
    case "cannot-open":
      return ExitCode.CannotOpen
    case "not-found":
      return ExitCode.NotFound
    case "not-intact":
      return ExitCode.NotIntact
    case "internal":
      return ExitCode.Internal
  }
}

/** Bad arguments (exit 2). */
export const usage = (detail: string) => new CommandError({ code: "usage", detail })
/** An input file or value is invalid: JSON, policy, key, checkpoint (exit 2). */
export const invalidInput = (detail: string) => new CommandError({ code: "invalid-input", detail })
/** A file or ledger cannot be opened or read (exit 3). */
export const cannotOpen = (detail: string) => new CommandError({ code: "cannot-open", detail })
/** The thing asked for does not exist (exit 4). */
export const notFound = (detail: string) => new CommandError({ code: "not-found", detail })
/** What the ledger holds does not verify (exit 1). */
export const notIntact = (detail: string) => new CommandError({ code: "not-intact", detail })

/** The text of a thrown value, for error details. */
export const describeCause = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))
