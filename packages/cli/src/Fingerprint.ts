/**
 * `egl fingerprint`: the runtime manifest of this machine's Node.js process and its fingerprint (SPEC §6), as
 * `Attestor.currentManifest` and `Attestor.fingerprint` compute them for the workers admission attests. Run it where a
 * worker runs to learn the fingerprint a request may pin, or to compare two machines.
 *
 * Lockfiles are keyed in the manifest by the path as given, so pass repository-relative paths: the same runtime then
 * yields the same fingerprint in any checkout. By default the lockfile of the working directory is used
 * (`pnpm-lock.yaml`, else `package-lock.json`), when there is one.
 * @module
 */
import { existsSync } from "node:fs"
import { join } from "node:path"
import { Attestor } from "@egl/core"
import { Effect } from "effect"
import * as Command from "./Command.ts"
import { cannotOpen, describeCause, invalidInput, type CommandError } from "./CommandError.ts"

/** What goes into the manifest besides what the process reports itself. */
export interface Input {
  /** Lockfiles to digest; default: {@link defaultLockfiles} of the working directory. */
  readonly lockfiles?: ReadonlyArray<string> | undefined
  /** Version of the framework adapter in front of the pipeline (default `none`). */
  readonly adapterVersion?: string | undefined
  /** Sandbox profile and its version (default `in-process`). */
  readonly sandboxProfile?: string | undefined
}

/** A runtime manifest and its fingerprint. */
export interface Result {
  readonly fingerprint: string
  readonly manifest: Attestor.RuntimeManifest
}

/** Lockfiles looked for in a directory, in order: the first present is the default. */
export const LOCKFILES = ["pnpm-lock.yaml", "package-lock.json"] as const

/** The default lockfile of `dir` (as a path relative to it), or none. */
export const defaultLockfiles = (dir: string = process.cwd()): ReadonlyArray<string> => {
  const found = LOCKFILES.find((name) => existsSync(join(dir, name)))
  return found === undefined ? [] : [found]
}

/** Computes the manifest of the running process and its fingerprint. */
export const compute = (input: Input = {}): Effect.Effect<Result, CommandError> =>
  Effect.gen(function* () {
    const manifest = yield* Attestor.currentManifest({
      lockfiles: input.lockfiles ?? defaultLockfiles(),
      adapterVersion: input.adapterVersion,
      sandboxProfile: input.sandboxProfile
    }).pipe(
      Effect.mapError((e) => (e.reason === "lockfile-unreadable" ? cannotOpen(e.detail) : invalidInput(e.detail)))
    )
    const fingerprint = yield* Effect.try({
      try: () => Attestor.fingerprint(manifest),
      catch: (e) => invalidInput(`the manifest cannot be fingerprinted: ${describeCause(e)}`)
    })
    return { fingerprint, manifest }
  })

/** The human text of a result. */
export const render = ({ fingerprint, manifest }: Result): string => {
  const lines = [fingerprint]
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(12)} ${value}`)
  row("interpreter", `${manifest.interpreter.name} ${manifest.interpreter.version}`)
  row(
    "os",
    `${manifest.os.platform} ${manifest.os.arch}${manifest.os.release === undefined ? "" : ` ${manifest.os.release}`}`
  )
  const lockfiles = Object.entries(manifest.lockfileDigests)
  if (lockfiles.length === 0) row("lockfiles", "none")
  for (const [path, digest] of lockfiles) row("lockfile", `${path} sha256:${digest}`)
  row("adapter", manifest.adapterVersion)
  row("sandbox", manifest.sandboxProfile)
  return `${lines.join("\n")}\n`
}

const options = {
  lockfile: { type: "string", multiple: true },
  "adapter-version": { type: "string" },
  "sandbox-profile": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" }
} as const

/** The `egl fingerprint` command. */
export const command: Command.Command = Command.make({
  path: ["fingerprint"],
  synopsis: "[--lockfile <path>]... [--adapter-version <v>] [--sandbox-profile <p>] [--json]",
  summary: "Print the runtime manifest of this process and its fingerprint.",
  details: `Options:
  --lockfile <path>            a lockfile to digest, keyed by the path as given (repeat for several); default:
                               ${LOCKFILES.join(" or ")} in the working directory, if present
  --adapter-version <v>        version of the framework adapter in front of the pipeline (default: none)
  --sandbox-profile <p>        sandbox profile and its version (default: in-process)
  --json                       print one JSON document: { ok, fingerprint, manifest }
  -h, --help                   show this help

Exit codes: 0 ok, 2 invalid arguments, 3 a lockfile cannot be read.`,
  body: (args) =>
    Effect.gen(function* () {
      const { values } = yield* Command.parse(args, options, { names: [] })
      const result = yield* compute({
        lockfiles: values.lockfile,
        adapterVersion: values["adapter-version"],
        sandboxProfile: values["sandbox-profile"]
      })
      return { exitCode: 0, json: { fingerprint: result.fingerprint, manifest: result.manifest }, text: render(result) }
    })
})
