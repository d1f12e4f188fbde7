import { spawn, type ChildProcessByStdio } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import type { Readable, Writable } from "node:stream"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, expect, it } from "vitest"
import { SqliteLedger } from "../src/index.ts"
import { Ledger, Sealer } from "@egl/core"

const RUNS = 50
const here = dirname(fileURLToPath(import.meta.url))
const child = join(here, "crash", "SqliteLedger.child.ts")
const keys = Sealer.generateKeyPair()
const dir = mkdtempSync(join(tmpdir(), "egl-sqlite-crash-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

type Child = ChildProcessByStdio<Writable, Readable, null>

/** Starts a child that loads everything, then waits for a line on stdin before it opens the ledger. */
const startChild = (file: string): Child =>
  spawn(process.execPath, ["--conditions=@egl/source", "--import", "tsx", child, file], {
    cwd: join(here, ".."),
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

/** Reopens the ledger and verifies it, checking every acknowledgement so far against the records verify reads. */
const check = (file: string, acked: Map<number, string>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const storage = yield* SqliteLedger.open(file)
        const { size } = yield* storage.head
        const lost: Array<number> = [...acked.keys()].filter((index) => index >= size)
        const checked: Ledger.LedgerStorage = {
          ...storage,
          read: (from, limit) =>
            Effect.map(storage.read(from, limit), (page) => {
              for (const r of page) {
                const want = acked.get(r.index)
                if (want !== undefined && (Ledger.isCorrupt(r) || r.hash !== want)) lost.push(r.index)
              }
              return page
            })
        }
        const report = yield* Ledger.verifyStorage(checked, [keys.publicKeyPem])
        return { lost, report, size }
      })
    )
  )

it(`keeps every acknowledged record across ${RUNS} SIGKILLs of a writer`, async () => {
  const file = join(dir, "ledger.db")
  const acked = new Map<number, string>()
  const started = performance.now()
  // Children load their modules ahead of their turn (about 0.6 s each), while earlier ones run and are checked.
  const spares = [startChild(file), startChild(file)]
  try {
    for (let run = 0; run < RUNS; run++) {
      const current = spares.shift()!
      if (run + spares.length + 1 < RUNS) spares.push(startChild(file))
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
    `sqlite ledger crash test: ${RUNS} kills, ${acked.size} acknowledged, ${final.size} stored, ` +
      `${final.report.checkpointsVerified} checkpoints, ` +
      `${Math.round(performance.now() - started)} ms`
  )
}, 180_000)
