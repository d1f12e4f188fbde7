/**
 * `egl policy snapshot <file>`: validates a JSON policy file as the policy engine loads it (`PolicyEngine.decode`) and
 * prints its snapshot id (SHA-256 of its RFC 8785 form, `PolicyEngine.snapshotOf`), version and rules: the id the
 * ledger and every decision will carry once the policy is in force, known before deploying it.
 *
 * With `--key`, also signs the snapshot as the running engine does (Ed25519 over `PolicyEngine.policyMessage`), so a
 * release pipeline can publish the signature beside the policy. Capability names are checked for their form only: the
 * capability catalog lives in the app's registry.
 * @module
 */
import { PolicyEngine, Sealer } from "@egl/core"
import { Effect } from "effect"
import * as Command from "./Command.ts"
import { invalidInput, type CommandError } from "./CommandError.ts"
import { readJson, readText } from "./internal/inputFile.ts"

/** What to snapshot. */
export interface Input {
  /** Path of the JSON policy file. */
  readonly file: string
  /** PEM file of the Ed25519 private key to sign the snapshot with (optional). */
  readonly keyFile?: string | undefined
}

/** A policy snapshot. */
export interface Result {
  readonly file: string
  readonly snapshotId: string
  readonly version: string
  /** Number of rules, in total and by effect. */
  readonly rules: { readonly total: number; readonly allow: number; readonly deny: number; readonly require: number }
  /** The signature, when a key was given: base64 Ed25519 over {@link PolicyEngine.policyMessage}, and the key's id. */
  readonly signature?: { readonly keyId: string; readonly signature: string; readonly publicKeyPem: string }
}

/** Reads, validates and (with a key) signs a policy file. */
export const snapshot = (input: Input): Effect.Effect<Result, CommandError> =>
  Effect.gen(function* () {
    const raw = yield* readJson(input.file, "policy file")
    const policy = yield* PolicyEngine.decode(raw).pipe(Effect.mapError((e) => invalidInput(e.message)))
    const { id } = PolicyEngine.snapshotOf(policy)
    const count = (effect: PolicyEngine.Rule["effect"]) => policy.rules.filter((r) => r.effect === effect).length
    const result: Result = {
      file: input.file,
      snapshotId: id,
      version: policy.version,
      rules: { total: policy.rules.length, allow: count("allow"), deny: count("deny"), require: count("require") }
    }
    if (input.keyFile === undefined) return result
    const privateKeyPem = yield* readText(input.keyFile, "key file")
    const signature = yield* Effect.gen(function* () {
      const sealer = yield* Sealer.Sealer
      const signature = yield* sealer.sign(PolicyEngine.policyMessage(id, policy.version))
      return { keyId: sealer.keyId, signature, publicKeyPem: sealer.publicKeyPem }
    }).pipe(
      Effect.provide(Sealer.Sealer.layer({ privateKeyPem })),
      Effect.mapError((e) => invalidInput(`key file ${input.keyFile}: ${e.detail}`))
    )
    return { ...result, signature }
  })

/** The human text of a result. */
export const render = (result: Result): string => {
  const lines = [result.snapshotId]
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(10)} ${value}`)
  row("file", result.file)
  row("version", result.version)
  const { total, allow, deny, require } = result.rules
  row("rules", `${total} (${allow} allow, ${deny} deny, ${require} require)`)
  if (result.signature !== undefined) {
    row("key", result.signature.keyId)
    row("signature", result.signature.signature)
  }
  return `${lines.join("\n")}\n`
}

const options = {
  key: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" }
} as const

/** The `egl policy snapshot` command. */
export const command: Command.Command = Command.make({
  path: ["policy", "snapshot"],
  synopsis: "<file> [--key <private-key-pem>] [--json]",
  summary: "Validate a JSON policy file and print its snapshot id, version and rule count.",
  details: `Arguments:
  <file>                       a JSON policy document ({ version, rules: [...] })

Options:
  --key <private-key-pem>      also sign the snapshot with this Ed25519 private key, as the policy engine does
                               (signature over "egl-policy/v1\\n<snapshot id>\\n<version>"); the key is never printed
  --json                       print one JSON document: { ok, file, snapshotId, version, rules, signature? }
  -h, --help                   show this help

Exit codes: 0 valid, 2 invalid arguments, invalid JSON, invalid policy (the message names the rule) or invalid key,
3 a file cannot be read.`,
  body: (args) =>
    Effect.gen(function* () {
      const { values, positionals } = yield* Command.parse(args, options, { names: ["<file>"] })
      const result = yield* snapshot({ file: positionals[0]!, keyFile: values.key })
      return { exitCode: 0, json: { ...result }, text: render(result) }
    })
})
