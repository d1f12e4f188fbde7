/**
 * Files the commands read (keys, checkpoints, policies): a file that cannot be read is "cannot open" (exit 3), one
 * that is not valid JSON is invalid input (exit 2). Paths are taken as given, relative to the working directory.
 */
import { readFile } from "node:fs/promises"
import { Effect } from "effect"
import { cannotOpen, describeCause, invalidInput, type CommandError } from "../CommandError.ts"

const reasonOf = (cause: unknown): string => {
  const code = (cause as NodeJS.ErrnoException)?.code
  if (code === "ENOENT") return "no such file"
  if (code === "EISDIR") return "it is a directory"
  if (code === "EACCES") return "permission denied"
  return describeCause(cause)
}

/** The text of a file; `what` names it in errors ("public key file"). */
export const readText = (path: string, what: string): Effect.Effect<string, CommandError> =>
  Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (e) => cannotOpen(`cannot read ${what} ${path}: ${reasonOf(e)}`)
  })

/** A file parsed as JSON. */
export const readJson = (path: string, what: string): Effect.Effect<unknown, CommandError> =>
  Effect.flatMap(readText(path, what), (text) =>
    Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => invalidInput(`${what} ${path} is not valid JSON: ${describeCause(e)}`)
    })
  )
