/**
 * The SIGKILL crash test every durable ledger backend must pass: a child process appends from concurrent callers and
 * prints each record's `index hash` only after its append resolved; the parent kills it at a random moment, reopens
 * the ledger and checks that every acknowledged record is present, unchanged, and that the chain verifies. Repeated on
 * the same ledger, so each restart also exercises the backend's recovery.
 */
import { spawn, type ChildProcessByStdio } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import type { Readable, Writable } from "node:stream"
import { fileURLToPath } from "node:url"
import { Effect, type Scope } from "effect"
import { afterAll, expect, it } from "vitest"
import { Ledger, Sealer } from "@egl/core"

/** A backend under test. */
export interface CrashBackend<S extends Ledger.LedgerStorage> {
  /** Name in the test title and summary, e.g. "sqlite". */
  readonly name: string
  /** Absolute path of the module the child imports; it must export `layer(path, options)` like `SqliteLedger`. */
  readonly module: string
  /** File name of the ledger inside a temporary directory (backends that live in a file). */
  readonly fileName?: string
  /**
   * Where the ledger lives when it is not a file of the temporary directory (e.g. a database URL): handed as is to the
   * child's `layer` and to `open`, in place of the file's path.
   */
  readonly target?: string
  /** Opens the backend's storage in the parent, to check it. */
  readonly open: (path: string) => Effect.Effect<S, Ledger.LedgerUnavailable, Scope.Scope>
  /** Extra facts for the summary line (e.g. torn tails recovered). */
  readonly describe?: (storage: S) => string
  /** Kills (default 50). */
  readonly runs?: number
}

const childScript = join(dirname(fileURLToPath(import.meta.url)), "ledgerCrashChild.ts")

type Child = ChildProcessByStdio<Writable, Readable, null>

/** Registers the crash test of a backend. */
export const ledgerCrashTest = <S extends Ledger.LedgerStorage>(backend: CrashBackend<S>): void => {
  const runs = backend.runs ?? 50
  const keys = Sealer.generateKeyPair()
  const dir = mkdtempSync(join(tmpdir(), `egl-${backend.name}-crash-`))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  /** Starts a child that loads everything, then waits for a line on stdin before it opens the ledger. */
  const startChild = (file: string): Child =>
    spawn(process.execPath, ["--conditions=@egl/source", "--import", "tsx", childScript, backend.module, file], {
      cwd: dirname(childScript),
      env: { ...process.env, EGL_TEST_PRIVATE_KEY: keys.privateKeyPem },
      stdio: ["pipe", "pipe", "inherit"]
    })

  /** Lets the child run, SIGKILLs it 30–300 ms after its first acknowledgement, and returns what it acknowledged. */
  const crash = (proc: Child) =>
    new Promise<{ acks: Array<[number, string]>; signal: NodeJS.Signals | null }>((resolve, reject) => {
      let out = ""
      let killer: NodeJS.Timeout | undefined
      const stuck = setTimeout(() => proc.kill("SIGKILL"), 20_000)
      proc.stdout.setEncoding("utf8")
      proc.stdout.on("data", (chunk: string) => {
        out += chunk
        killer ??= setTimeout(() => proc.kill("SIGKILL"), 30 + Math.random() * 270)
      })
      proc.once("error", reject)
      // "close" comes after the process is reaped and its stdout drained: every ack written before the kill is in `out`.
      proc.once("close", (_code, signal) => {
        clearTimeout(stuck)
        clearTimeout(killer)
        const complete = out.slice(0, out.lastIndexOf("\n") + 1)
        const acks = complete
          .split("\n")
          .filter((l) => l !== "")
          .map((l): [number, string] => {
            const [index, hash] = l.split(" ")
            return [Number(index), hash!]
          })
        resolve({ acks, signal })
      })
      proc.stdin.write("go\n")
    })

  /** Reopens the ledger and verifies it, checking every acknowledgement against the records verification reads. */
  const check = (file: string, acked: Map<number, string>) =>
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const storage = yield* backend.open(file)
          const { size } = yield* storage.head
          const lost: Array<number> = [...acked.keys()].filter((index) => index >= size)
          const seen = (r: Ledger.StoredRecord) => {
            const want = acked.get(r.index)
            if (want !== undefined && (Ledger.isCorrupt(r) || r.hash !== want)) lost.push(r.index)
          }
          // Both read paths are watched: verification streams through `scan` where the backend has one.
          const scan = storage.scan
          const checked: Ledger.LedgerStorage = {
            ...storage,
            read: (from, limit) =>
              Effect.map(storage.read(from, limit), (page) => {
                page.forEach(seen)
                return page
              }),
            ...(scan !== undefined
              ? {
                  scan: (from: number, visit: (r: Ledger.StoredRecord) => boolean) =>
                    scan(from, (r) => {
                      seen(r)
                      return visit(r)
                    })
                }
              : {})
          }
          const report = yield* Ledger.verifyStorage(checked, [keys.publicKeyPem])
          return { lost, report, size, facts: backend.describe?.(storage) ?? "" }
        })
      )
    )

  it(`keeps every acknowledged record across ${runs} SIGKILLs of a writer`, async () => {
    const file = backend.target ?? join(dir, backend.fileName ?? "ledger")
    const acked = new Map<number, string>()
    const started = performance.now()
    // Children load their modules ahead of their turn (about 0.6 s each), while earlier ones run and are checked.
    const spares = [startChild(file), startChild(file)]
    try {
      for (let run = 0; run < runs; run++) {
        const current = spares.shift()!
        if (run + spares.length + 1 < runs) spares.push(startChild(file))
        const { acks, signal } = await crash(current)
        expect(signal, `run ${run}: the child exited by itself`).toBe("SIGKILL")
        expect(acks.length, `run ${run}: no acknowledgement before the kill`).toBeGreaterThan(0)
        for (const [index, hash] of acks) {
          expect(acked.get(index) ?? hash, `run ${run}: index ${index} acknowledged twice with different hashes`).toBe(
            hash
          )
          acked.set(index, hash)
        }
        const { lost, report } = await check(file, acked)
        expect(lost, `run ${run}: acknowledged records lost or changed`).toEqual([])
        expect(report, `run ${run}`).toMatchObject({ ok: true })
      }
    } finally {
      for (const spare of spares) spare.kill("SIGKILL")
    }
    const final = await check(file, acked)
    console.log(
      `${backend.name} ledger crash test: ${runs} kills, ${acked.size} acknowledged, ${final.size} stored, ` +
        `${final.report.checkpointsVerified} checkpoints${final.facts ? `, ${final.facts}` : ""}, ` +
        `${Math.round(performance.now() - started)} ms`
    )
  }, 180_000)
}
