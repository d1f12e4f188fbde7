/**
 * The shape every `egl` command shares: its name and help, argument parsing (node:util `parseArgs`, strict), and one
 * way to print results and errors. A command body is an Effect that answers an {@link Outcome} or fails with a
 * {@link CommandError}; {@link make} runs it with `Effect.runPromiseExit` and turns it into output and an exit code.
 *
 * With `--json` a command prints exactly one JSON document on standard output, for success and failure alike:
 * `{ "ok": true, … }`, `{ "ok": false, … }` (a ledger that does not verify) or
 * `{ "ok": false, "error": { "code", "message" } }`. Without it, results go to standard output and errors to standard
 * error, prefixed with the command's name.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util"
import { Cause, Effect, Exit } from "effect"
import { CommandError, describeCause, ExitCode, exitCodeOf, usage, type ErrorCode } from "./CommandError.ts"
import { processIo, type Io } from "./Io.ts"

/** What a command produced: its exit code (0 or 1), the JSON document of `--json` (without `ok`), the human text. */
export interface Outcome {
  readonly exitCode: typeof ExitCode.Ok | typeof ExitCode.NotIntact
  readonly json: Readonly<Record<string, unknown>>
  readonly text: string
}

/** A command of the `egl` CLI. */
export interface Command {
  /** The words that name it, e.g. `["ledger", "verify"]`. */
  readonly path: ReadonlyArray<string>
  /** Arguments after the name, as the usage line shows them. */
  readonly synopsis: string
  /** One line for the command list. */
  readonly summary: string
  /** The full `--help` text. */
  readonly help: string
  /** Runs the command with the arguments after its name; resolves to the exit code (never rejects). */
  readonly run: (args: ReadonlyArray<string>, io?: Io) => Promise<number>
}

/** What {@link make} needs. */
export interface CommandSpec {
  readonly path: ReadonlyArray<string>
  readonly synopsis: string
  readonly summary: string
  /** Help text after the usage line: arguments, options, examples. */
  readonly details: string
  readonly body: (args: ReadonlyArray<string>) => Effect.Effect<Outcome, CommandError>
}

/** The usage line of a command. */
export const usageLine = (command: Pick<Command, "path" | "synopsis">): string =>
  `Usage: egl ${command.path.join(" ")}${command.synopsis === "" ? "" : ` ${command.synopsis}`}`

/** Builds a command: `--help` / `-h` print its help (exit 0); otherwise the body runs and its outcome is printed. */
export const make = (spec: CommandSpec): Command => {
  const help = `${usageLine(spec)}\n\n${spec.summary}\n\n${spec.details.trimEnd()}\n`
  const name = `egl ${spec.path.join(" ")}`
  return {
    path: spec.path,
    synopsis: spec.synopsis,
    summary: spec.summary,
    help,
    run: async (args, io = processIo) => {
      const options = optionArgs(args)
      if (options.includes("--help") || options.includes("-h")) {
        io.stdout(help)
        return ExitCode.Ok
      }
      const json = options.includes("--json")
      const exit = await Effect.runPromiseExit(spec.body(args))
      if (Exit.isSuccess(exit)) {
        const outcome = exit.value
        if (json) io.stdout(`${JSON.stringify({ ok: outcome.exitCode === ExitCode.Ok, ...outcome.json }, null, 2)}\n`)
        else io.stdout(outcome.text.endsWith("\n") ? outcome.text : `${outcome.text}\n`)
        return outcome.exitCode
      }
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "Some") {
        return report(io, {
          json,
          name,
          code: error.value.code,
          message: error.value.detail,
          hint: hintOf(error.value, spec)
        })
      }
      return report(io, {
        json,
        name,
        code: "internal",
        message: `internal error: ${describeCause(Cause.squash(exit.cause))}`
      })
    }
  }
}

const hintOf = (error: CommandError, spec: CommandSpec): string | undefined =>
  error.code === "usage" ? `${usageLine(spec)}\nRun "egl ${spec.path.join(" ")} --help" for details.` : undefined

/** The arguments before `--` (after it, everything is a positional, even `--help`). */
const optionArgs = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const end = args.indexOf("--")
  return end === -1 ? args : args.slice(0, end)
}

/** Prints a failure as the mode asks and returns its exit code. */
export const report = (
  io: Io,
  failure: {
    readonly json: boolean
    /** Prefix of the human message, e.g. `egl ledger verify`. */
    readonly name: string
    readonly code: ErrorCode
    readonly message: string
    /** Extra human lines (usage), not part of the JSON document. */
    readonly hint?: string | undefined
  }
): number => {
  if (failure.json) {
    io.stdout(`${JSON.stringify({ ok: false, error: { code: failure.code, message: failure.message } }, null, 2)}\n`)
  } else {
    io.stderr(`${failure.name}: ${failure.message}\n${failure.hint === undefined ? "" : `${failure.hint}\n`}`)
  }
  return exitCodeOf(failure.code)
}

/** The option definitions of a command, as `parseArgs` takes them. */
export type Options = NonNullable<ParseArgsConfig["options"]>

/** What {@link parse} answers for a command's options. */
export type Parsed<O extends Options> = ReturnType<
  typeof parseArgs<{ args: Array<string>; options: O; allowPositionals: true; strict: true }>
>

/**
 * Parses a command's arguments strictly (unknown options and missing values are usage errors) and checks the number
 * of positionals against their names (`names` required, then up to `optional` more).
 */
export const parse = <const O extends Options>(
  args: ReadonlyArray<string>,
  options: O,
  positionals: { readonly names: ReadonlyArray<string>; readonly optional?: number }
): Effect.Effect<Parsed<O>, CommandError> =>
  Effect.gen(function* () {
    const parsed = yield* Effect.try({
      try: () => parseArgs({ args: [...args], options, allowPositionals: true, strict: true }),
      catch: (e) => usage(describeCause(e))
    })
    const count = parsed.positionals.length
    const missing = positionals.names[count]
    if (missing !== undefined) return yield* usage(`missing ${missing}`)
    const max = positionals.names.length + (positionals.optional ?? 0)
    if (count > max) return yield* usage(`unexpected argument "${parsed.positionals[max]}"`)
    return parsed
  })
