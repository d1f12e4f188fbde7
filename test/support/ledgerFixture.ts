/**
 * What every ledger backend's tests share: a signing key, fresh ledger files in a temporary directory, a ledger
 * service over a backend's storage, verification with only the public key, and deterministic drafts.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, type Scope } from "effect"
import { afterAll, expect, it } from "vitest"
import { Ledger, Sealer } from "@egl/core"

/** A backend under test. */
export interface FixtureBackend<S extends Ledger.LedgerStorage> {
  /** Short name, used in the temporary directory's name. */
  readonly name: string
  /** Extension of the ledger files. */
  readonly extension: string
  /** Opens the backend's storage, scoped. */
  readonly open: (path: string) => Effect.Effect<S, Ledger.LedgerUnavailable, Scope.Scope>
}

/** The fixture of one backend; registers the cleanup of its temporary directory. */
export const ledgerFixture = <S extends Ledger.LedgerStorage>(backend: FixtureBackend<S>) => {
  const keys = Sealer.generateKeyPair()
  const SealerLive = Sealer.Sealer.layer({ privateKeyPem: keys.privateKeyPem })
  const dir = mkdtempSync(join(tmpdir(), `egl-${backend.name}-ledger-`))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  let files = 0

  /** Runs `f` against a ledger service over the storage; closing signs a final checkpoint, as a clean stop does. */
  const withLedger = <A, E>(
    file: string,
    f: (ledger: Ledger.Ledger["Service"], storage: S) => Effect.Effect<A, E>,
    options?: Ledger.LedgerOptions
  ) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* backend.open(file)
          const ledger = yield* Ledger.make(storage, { checkpointIntervalMs: 0, ...options })
          return yield* f(ledger, storage)
        })
      ).pipe(Effect.provide(SealerLive))
    )

  /** Runs `f` against the storage alone. */
  const withStorage = <A, E>(file: string, f: (s: S) => Effect.Effect<A, E>) =>
    Effect.runPromise(Effect.scoped(Effect.flatMap(backend.open(file), f)))

  /**
   * Registers the group-commit test: concurrent appends through the service reach the backend in far fewer durable
   * writes (`commits` reads the backend's write counter), and every caller gets its own record.
   */
  const itGroupCommits = (title: string, commits: (storage: S) => number) =>
    it(title, async () => {
      const file = join(dir, `ledger-${files++}.${backend.extension}`)
      const count = 500
      const result = await withLedger(file, (ledger, storage) =>
        Effect.map(
          Effect.forEach(
            Array.from({ length: count }, (_, i) => i),
            (i) => ledger.append(draftOf(i)),
            { concurrency: "unbounded" }
          ),
          (results) => ({ results, commits: commits(storage) })
        )
      )
      expect(new Set(result.results.map((r) => r.index)).size).toBe(count)
      result.results.forEach((r, i) => expect(r.ref).toBe(`env-${i}`))
      expect(result.commits).toBeGreaterThan(0)
      expect(result.commits).toBeLessThan(count / 10)
      expect(await withStorage(file, (s) => Ledger.verifyStorage(s, [keys.publicKeyPem]))).toMatchObject({
        ok: true,
        length: count
      })
    })

  return {
    itGroupCommits,
    keys,
    /** A path for a new ledger. */
    fresh: () => join(dir, `ledger-${files++}.${backend.extension}`),
    withLedger,
    withStorage,
    /** Verifies the ledger with only the public key, as an auditor would. */
    verifyFile: (file: string) => withStorage(file, (s) => Ledger.verifyStorage(s, [keys.publicKeyPem]))
  }
}

/** The i-th test draft: a decision at a fixed time, about `env-i`. */
export const draftOf = (i: number, ref = `env-${i}`, kind: Ledger.RecordKind = "decision") =>
  Ledger.draft(
    kind,
    new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
    ref,
    JSON.stringify({ n: i, note: "payload text" })
  )

/** Appends drafts `from` … `from + count - 1`, each awaited. */
export const appendSequentially = (ledger: Ledger.Ledger["Service"], from: number, count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => from + i),
    (i) => ledger.append(draftOf(i))
  )

/** Deterministic PRNG (mulberry32) so a failing tamper position can be replayed. */
export const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
