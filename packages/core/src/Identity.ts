/**
 * Identity resolution: who is asking, from a configured resolver, never from a client-set header.
 *
 * One contract for every adapter (Express, NestJS, tRPC): a resolver reads the credentials of a request through a
 * header accessor and answers with the {@link Envelope.Subject} they belong to, or `undefined` when there are none or
 * they are unknown (`401`). Subjects are validated when the resolver is built, so a misconfigured principal fails at
 * startup rather than per request. Secrets are compared in constant time: each configured key is kept only as its
 * SHA-256 digest, and every presented credential is compared with every digest through `timingSafeEqual`, with no
 * early exit, so neither the match nor its position leaks through timing.
 *
 * `X-User`, `X-Forwarded-User` and similar client-set headers are never consulted by the built-in resolvers.
 *
 * @example
 * ```ts
 * import { Identity } from "@egl/core"
 * const identity = Identity.fromBearerToken({
 *   [process.env.ALICE_KEY!]: { id: "alice", kind: "user", roles: ["ml-engineer"] }
 * })
 * ```
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Schema } from "effect"
import { Subject } from "./Envelope.ts"

/** Read access to a request's headers; `name` is lowercase. A repeated header may be joined or given as an array. */
export interface Credentials {
  header(name: string): string | ReadonlyArray<string> | undefined
}

/** A principal as configured (validated against the envelope's `Subject` schema). */
export type Principal = typeof Subject.Encoded

/** Resolves the subject of a request, or `undefined` when the request carries no known credentials. */
export type IdentityResolver = (credentials: Credentials) => Principal | undefined | Promise<Principal | undefined>

/** The request carries no credentials or unknown ones (`401`). */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", {
  detail: Schema.String
}) {
  /** Reason code of this rejection. */
  readonly code = "UNAUTHENTICATED" as const
  override get message(): string {
    return this.detail
  }
}

/** The identity resolver threw, or answered something that is not a subject: nothing is admitted (`503`). */
export class IdentityUnavailable extends Schema.TaggedError<IdentityUnavailable>()("IdentityUnavailable", {
  detail: Schema.String
}) {
  /** Reason code of this rejection. */
  readonly code = "IDENTITY_UNAVAILABLE" as const
  override get message(): string {
    return this.detail
  }
}

/** The resolver configuration cannot work (thrown when the resolver is built). */
export class IdentityConfigInvalid extends Schema.TaggedError<IdentityConfigInvalid>()("IdentityConfigInvalid", {
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid identity configuration: ${this.detail}`
  }
}

const decodeSubject = Schema.decodeUnknownExit(Subject)

const digestOf = (secret: string): Buffer => createHash("sha256").update(secret, "utf8").digest()

/** Most credentials a resolver accepts from one header value (longer ones are not keys: no hashing of megabytes). */
const MAX_SECRET_LENGTH = 4096

interface KeyEntry {
  readonly digest: Buffer
  readonly subject: Subject
}

const buildTable = (keys: Readonly<Record<string, Principal>>): ReadonlyArray<KeyEntry> => {
  if (typeof keys !== "object" || keys === null) throw new IdentityConfigInvalid({ detail: "keys must be an object" })
  const entries: Array<KeyEntry> = []
  for (const [secret, principal] of Object.entries(keys)) {
    if (secret.length === 0 || secret.length > MAX_SECRET_LENGTH || secret.trim() !== secret) {
      throw new IdentityConfigInvalid({
        detail: `a key must be 1..${MAX_SECRET_LENGTH} characters without surrounding whitespace`
      })
    }
    const decoded = decodeSubject(principal)
    if (decoded._tag === "Failure") {
      throw new IdentityConfigInvalid({
        detail: `the principal of a key is not a valid subject: ${JSON.stringify((principal as { id?: unknown })?.id)}`
      })
    }
    entries.push({ digest: digestOf(secret), subject: decoded.value })
  }
  if (entries.length === 0) throw new IdentityConfigInvalid({ detail: "at least one key is required" })
  return entries
}

/** Finds the subject of a presented secret, comparing its digest with every key's in constant time. */
const lookup = (table: ReadonlyArray<KeyEntry>, presented: string): Subject | undefined => {
  if (presented.length === 0 || presented.length > MAX_SECRET_LENGTH) return undefined
  const digest = digestOf(presented)
  let found: Subject | undefined
  for (const entry of table) {
    // No early exit: the time taken does not depend on which key matched, or whether one did.
    if (timingSafeEqual(entry.digest, digest)) found = entry.subject
  }
  return found
}

const single = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" ? value : value !== undefined && value.length === 1 ? value[0] : undefined

const BEARER = /^Bearer +([\x21-\x7e]+) *$/i

/**
 * Resolves `Authorization: Bearer <token>` against a table of tokens → principals.
 * Throws {@link IdentityConfigInvalid} when a principal is not a valid subject.
 */
export const fromBearerToken = (tokens: Readonly<Record<string, Principal>>): IdentityResolver => {
  const table = buildTable(tokens)
  return function bearerToken(credentials) {
    const header = single(credentials.header("authorization"))
    if (header === undefined) return undefined
    const match = BEARER.exec(header)
    return match === null ? undefined : lookup(table, match[1]!)
  }
}

/** Options of {@link fromApiKeys}. */
export interface ApiKeyOptions {
  /** Header carrying the key (default `x-api-key`); `Authorization: Bearer <key>` is accepted too unless `bearer` is false. */
  readonly header?: string | undefined
  readonly bearer?: boolean | undefined
}

/**
 * Resolves an API key sent in a dedicated header (default `X-API-Key`) or as a bearer token.
 * Throws {@link IdentityConfigInvalid} when a principal is not a valid subject.
 */
export const fromApiKeys = (keys: Readonly<Record<string, Principal>>, options?: ApiKeyOptions): IdentityResolver => {
  const table = buildTable(keys)
  const headerName = (options?.header ?? "x-api-key").toLowerCase()
  const bearer = options?.bearer ?? true
  return function apiKey(credentials) {
    const key = single(credentials.header(headerName))
    if (key !== undefined) return lookup(table, key.trim())
    if (!bearer) return undefined
    const header = single(credentials.header("authorization"))
    const match = header === undefined ? null : BEARER.exec(header)
    return match === null ? undefined : lookup(table, match[1]!)
  }
}

/**
 * A custom resolver (e.g. verifying a JWT or a session). Its answers are validated like every other resolver's: a value
 * that is not a subject is {@link IdentityUnavailable}, never an admission.
 */
export const custom = (resolve: IdentityResolver): IdentityResolver => resolve

/** Tries resolvers in order; the first subject wins. */
export const firstOf =
  (...resolvers: ReadonlyArray<IdentityResolver>): IdentityResolver =>
  async (credentials) => {
    for (const resolver of resolvers) {
      const subject = await resolver(credentials)
      if (subject !== undefined) return subject
    }
    return undefined
  }

/**
 * Runs a resolver and validates its answer: the subject, {@link Unauthenticated}, or {@link IdentityUnavailable} when
 * the resolver threw or answered garbage.
 */
export const resolve = async (
  resolver: IdentityResolver,
  credentials: Credentials
): Promise<Subject | Unauthenticated | IdentityUnavailable> => {
  let answer: unknown
  try {
    answer = await resolver(credentials)
  } catch (cause) {
    return new IdentityUnavailable({
      detail: `the identity resolver failed: ${cause instanceof Error ? cause.message : String(cause)}`
    })
  }
  if (answer === undefined || answer === null) {
    return new Unauthenticated({ detail: "missing or unknown credentials" })
  }
  const decoded = decodeSubject(answer)
  return decoded._tag === "Success"
    ? decoded.value
    : new IdentityUnavailable({ detail: "the identity resolver answered something that is not a subject" })
}

/** Header accessor over a Node.js / Express / Nest request's `headers` object (lowercase keys). */
export const fromNodeHeaders = (
  headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
): Credentials => ({
  header: (name) => headers[name]
})

/** Header accessor over a Fetch API `Headers` (tRPC's fetch adapters). */
export const fromFetchHeaders = (headers: { get(name: string): string | null }): Credentials => ({
  header: (name) => headers.get(name) ?? undefined
})
