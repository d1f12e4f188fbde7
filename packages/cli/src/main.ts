/**
 * The `egl` command: dispatches `egl <command> [args]` to the commands and returns the exit code.
 *
 * `pnpm egl <args>` runs this module from source (tsx); the published `bin/egl.js` imports the compiled one. It runs
 * itself only when it is the process's entry module, so importing it (tests, the barrel) runs nothing.
 * @module
 */
import { readFileSync, realpathSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { Command } from "./Command.ts"
import { report } from "./Command.ts"
import { ExitCode } from "./CommandError.ts"
import * as EnvelopeShow from "./EnvelopeShow.ts"
import * as Fingerprint from "./Fingerprint.ts"
import { processIo, type Io } from "./Io.ts"
import * as LedgerVerify from "./LedgerVerify.ts"
import * as PolicySnapshot from "./PolicySnapshot.ts"

/** Every command, in the order `egl --help` lists them. */
export const commands: ReadonlyArray<Command> = [
  LedgerVerify.command,
  EnvelopeShow.command,
  Fingerprint.command,
  PolicySnapshot.command
]

/** The version of `@egl/cli`. */
export const version = (): string =>
  (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version

const commandList = (list: ReadonlyArray<Command>) => {
  const names = list.map((c) => c.path.join(" "))
  const width = Math.max(...names.map((n) => n.length))
  return list.map((c, i) => `  ${names[i]!.padEnd(width)}  ${c.summary}`).join("\n")
}

/** The text of `egl --help`. */
export const usage = (): string => `Usage: egl <command> [arguments] [--json]

The EGL (Execution Governance Layer) command line: audit a ledger, inspect an envelope, fingerprint a runtime,
snapshot a policy.

Commands:
${commandList(commands)}

Options:
  -h, --help       show help (also after a command: egl ledger verify --help)
  --version        print the version
  --json           on every command: print one JSON document on stdout, also for errors
                   ({ "ok": false, "error": { "code", "message" } })

Ledger URLs: file:<path> (JSONL), sqlite:<path>, postgres://user@host:port/database?schema=<schema> (schema default
public); memory cannot be opened from outside the app.

Exit codes:
  0   ok
  1   the ledger is not intact (first bad index, failure and detail are printed), or an envelope's seal does not verify
  2   usage error or invalid input: bad arguments, invalid JSON, invalid policy, invalid key or checkpoint
  3   cannot open: missing file or schema, invalid or unsupported ledger URL, database unreachable, I/O error
  4   not found: no envelope with that id
  70  internal error (a bug in egl)
`

const HELP = new Set(["--help", "-h", "help"])

/**
 * Runs `egl` with `argv` (the arguments after the program name) and resolves to the exit code; never rejects.
 *
 * @example
 * ```ts
 * import { main, Io } from "@egl/cli"
 * const io = Io.capture()
 * const code = await main(["ledger", "verify", "sqlite:ledger.db", "--json"], io)
 * const report = JSON.parse(io.out)
 * ```
 */
export const main = async (argv: ReadonlyArray<string>, io: Io = processIo): Promise<number> => {
  const json = argv.includes("--json")
  const [first, second] = argv
  const fail = (message: string, hint: string) =>
    report(io, { json, name: "egl", code: "usage", message, hint: `\n${hint.trimEnd()}` })
  if (first === undefined) return fail("missing command", usage())
  if (HELP.has(first)) {
    io.stdout(usage())
    return ExitCode.Ok
  }
  if (first === "--version") {
    io.stdout(json ? `${JSON.stringify({ ok: true, version: version() })}\n` : `${version()}\n`)
    return ExitCode.Ok
  }
  const command = commands.find((c) => c.path.every((word, i) => argv[i] === word))
  if (command !== undefined) return command.run(argv.slice(command.path.length), io)
  const group = commands.filter((c) => c.path.length > 1 && c.path[0] === first)
  if (group.length > 0) {
    const groupUsage = `Usage: egl ${first} <command>\n\nCommands:\n${commandList(group)}\n`
    if (second !== undefined && HELP.has(second)) {
      io.stdout(groupUsage)
      return ExitCode.Ok
    }
    return fail(
      second === undefined || second.startsWith("-")
        ? `missing ${first} command`
        : `unknown command "${first} ${second}"`,
      groupUsage
    )
  }
  return fail(`unknown command "${first}"`, usage())
}

const isEntry = (): boolean => {
  const entry = process.argv[1]
  if (entry === undefined) return false
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isEntry()) {
  // A reader that goes away (`egl … | head`) is not an error of ours.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e
  })
  process.exitCode = await main(process.argv.slice(2))
}
