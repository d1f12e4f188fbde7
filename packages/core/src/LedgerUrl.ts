/**
 * Ledger URLs (SPEC §9, §11): the one string that says where a ledger lives, as `EGL_LEDGER` and `egl ledger verify`
 * take it.
 *
 * - `memory`: in the process, gone when it exits;
 * - `file:<path>`: the JSONL file ledger of {@link FileLedger};
 * - `sqlite:<path>`: the SQLite ledger of `@egl/ledger-sqlite`;
 * - `postgres://…` (or `postgresql://…`): the PostgreSQL ledger of `@egl/ledger-postgres`. Its `schema` query
 *   parameter names the schema that holds the chain (default `public`; lower-case letters, digits and `_`), e.g.
 *   `postgres://egl@db:5432/egl?schema=egl`; every instance given the same URL appends to the same chain, and
 *   `egl ledger verify` takes the same URL. The other parameters are the connection's (`sslmode`, …).
 *
 * The path after `file:` or `sqlite:` is taken literally and may be relative (to the working directory); the URL form
 * with an empty host, `file:///var/lib/egl/ledger.jsonl`, is the absolute path after the two slashes. Anything else is
 * a {@link LedgerUrlInvalid}. A PostgreSQL URL usually carries a password: show it with {@link describe}, never as is.
 *
 * @example
 * ```ts
 * import { LedgerUrl } from "@egl/core"
 *
 * const url = LedgerUrl.parseSync(process.env["EGL_LEDGER"] ?? "sqlite:.data/ledger.db")
 * if (url.kind === "sqlite") console.log(`SQLite ledger at ${url.path}`)
 * ```
 * @module
 */
import { Effect, Schema } from "effect"

/** Where a ledger lives. */
export type LedgerUrl =
  | { readonly kind: "memory" }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "sqlite"; readonly path: string }
  | { readonly kind: "postgres"; readonly url: string }

/** The string is not a ledger URL; `input` is shown with any password masked. */
export class LedgerUrlInvalid extends Schema.TaggedError<LedgerUrlInvalid>()("LedgerUrlInvalid", {
  input: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid ledger URL "${this.input}": ${this.detail}`
  }
}

/** The forms {@link parse} accepts, for messages and help texts. */
export const FORMS = "memory, file:<path>, sqlite:<path> or postgres://…"

/** Parses a ledger URL, or returns why it is not one. */
export const parseOrError = (input: string): LedgerUrl | LedgerUrlInvalid => {
  const invalid = (detail: string) => new LedgerUrlInvalid({ input: maskPassword(input), detail })
  if (input === "memory") return { kind: "memory" }
  for (const kind of ["file", "sqlite"] as const) {
    if (!input.startsWith(`${kind}:`)) continue
    const rest = input.slice(kind.length + 1)
    // `file:///abs` is the URL form of `/abs`; `file://host/…` names a host, which no local backend can reach.
    const path = rest.startsWith("///") ? rest.slice(2) : rest
    if (path.startsWith("//"))
      return invalid(`a host is not supported; use ${kind}:/absolute/path or ${kind}:relative/path`)
    if (path.length === 0) return invalid(`${kind}: needs a path`)
    if (path.includes("\0")) return invalid("the path contains a NUL character")
    return { kind, path }
  }
  if (input.startsWith("postgres://") || input.startsWith("postgresql://")) {
    if (!URL.canParse(input)) return invalid("not a valid PostgreSQL connection URL")
    return { kind: "postgres", url: input }
  }
  return invalid(`expected ${FORMS}`)
}

/** Parses a ledger URL. */
export const parse = (input: string): Effect.Effect<LedgerUrl, LedgerUrlInvalid> =>
  Effect.suspend(() => {
    const url = parseOrError(input)
    return url instanceof LedgerUrlInvalid ? Effect.fail(url) : Effect.succeed(url)
  })

/** Parses a ledger URL; throws {@link LedgerUrlInvalid} (for configuration read at startup). */
export const parseSync = (input: string): LedgerUrl => {
  const url = parseOrError(input)
  if (url instanceof LedgerUrlInvalid) throw url
  return url
}

/** The URL as text, with a PostgreSQL password masked: what logs, errors and reports may show. */
export const describe = (url: LedgerUrl): string => {
  switch (url.kind) {
    case "memory":
      return "memory"
    case "file":
    case "sqlite":
      return `${url.kind}:${url.path}`
    case "postgres":
      return maskPassword(url.url)
  }
}

/**
 * Masks the secrets of a connection string: the password of `scheme://user:password@host`, and the value of a
 * `password`, `sslpassword` or `sslkey` query parameter (libpq accepts both forms).
 */
const maskPassword = (text: string): string =>
  text
    .replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^/]*@/i, "$1:***@")
    .replace(/([?&](?:password|sslpassword|sslkey)=)[^&#]*/gi, "$1***")
