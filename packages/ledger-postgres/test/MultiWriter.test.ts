/**
 * Several app instances append to one chain while their connections are terminated under them: three child processes,
 * each a core `Ledger` service over its own `PostgresLedger` on one schema, sixteen concurrent writers each, for a
 * bounded time; meanwhile the test terminates their sessions (`pg_terminate_backend`) now and then.
 */
import { spawn } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { Ledger, Sealer } from "@egl/core"
import { Effect } from "effect"
import { expect, it } from "vitest"
import { PostgresLedger } from "../src/index.ts"
import { testDatabase, urlOf } from "./support/database.ts"

const db = testDatabase("mw")
const child = join(dirname(fileURLToPath(import.meta.url)), "support", "multiWriterChild.ts")
const INSTANCES = 3
const WRITERS = 16
const DURATION_MS = 6000

interface Instance {
  readonly acks: Array<{ index: number; hash: string; id: string }>
  readonly failed: number
  readonly stats: { commits: number; retries: number; recovered: number }
}

it(`${INSTANCES} instances × ${WRITERS} writers for ${DURATION_MS} ms, sessions terminated under them: one gapless chain`, async () => {
  const keys = Sealer.generateKeyPair()
  const schema = db.fresh()
  const url = urlOf(schema)
  const application = `${schema}_app`
  // The schema exists before the instances start, as after a deployment's first start.
  await Effect.runPromise(Effect.scoped(PostgresLedger.open(url)))

  const processes = Array.from({ length: INSTANCES }, (_, i) =>
    spawn(
      process.execPath,
      [
        "--conditions=@egl/source",
        "--import",
        "tsx",
        child,
        url,
        `${application}${i}`,
        String(WRITERS),
        String(DURATION_MS)
      ],
      {
        cwd: dirname(child),
        env: { ...process.env, EGL_TEST_PRIVATE_KEY: keys.privateKeyPem },
        stdio: ["pipe", "pipe", "inherit"]
      }
    )
  )
  const outputs = processes.map(
    (proc) =>
      new Promise<{ out: string; code: number | null }>((resolve, reject) => {
        let out = ""
        proc.stdout.setEncoding("utf8")
        proc.stdout.on("data", (chunk: string) => (out += chunk))
        proc.once("error", reject)
        proc.once("close", (code) => resolve({ out, code }))
      })
  )
  const ready = processes.map(
    (proc) =>
      new Promise<void>((resolve) => {
        const onData = (chunk: Buffer | string) => {
          if (String(chunk).includes("ready")) {
            proc.stdout.off("data", onData)
            resolve()
          }
        }
        proc.stdout.on("data", onData)
      })
  )
  await Promise.all(ready)
  for (const proc of processes) proc.stdin.end("go\n")

  // Terminate the instances' sessions (a random half of them, idle or in the middle of an append) every 600 ms.
  let terminations = 0
  let rounds = 0
  let running = true
  const finished = Promise.all(outputs).finally(() => (running = false))
  const killer = (async () => {
    await new Promise((resolve) => setTimeout(resolve, 500))
    while (running) {
      const r = await db.sql(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
         WHERE starts_with(application_name, $1) AND random() < 0.5`,
        [application]
      )
      terminations += r.rows[0].n
      rounds++
      await new Promise((resolve) => setTimeout(resolve, 600))
    }
  })()
  const results = await finished
  await killer

  const instances: Array<Instance> = results.map(({ out, code }, i) => {
    expect(code, `instance ${i} exit code`).toBe(0)
    const acks: Instance["acks"] = []
    let failed = 0
    let stats: Instance["stats"] | undefined
    for (const line of out.split("\n")) {
      const [word, a, b, c] = line.split(" ")
      if (word === "ack") acks.push({ index: Number(a), hash: b!, id: c! })
      else if (word === "fail") failed++
      else if (word === "stats") stats = { commits: Number(a), retries: Number(b), recovered: Number(c) }
    }
    expect(stats, `instance ${i} printed its stats`).toBeDefined()
    return { acks, failed, stats: stats! }
  })

  const rows = await db.sql<{ idx: string; hash: string; prev_hash: string; id: string }>(
    `SELECT idx, hash, prev_hash, body::json->>'id' AS id FROM ${schema}.records ORDER BY idx`
  )
  const records = rows.rows.length
  // Gapless: 0 … n-1; no fork: every previous hash once; the head row agrees.
  expect(rows.rows.every((r, i) => Number(r.idx) === i)).toBe(true)
  expect(new Set(rows.rows.map((r) => r.prev_hash)).size).toBe(records)
  expect((await db.sql(`SELECT size::int AS size FROM ${schema}.head`)).rows[0].size).toBe(records)
  // No record stored twice, whatever was retried.
  expect(new Set(rows.rows.map((r) => r.id)).size).toBe(records)
  // Every acknowledged record is present, where and as it was acknowledged.
  const acks = instances.flatMap((x) => x.acks)
  const missing = acks.filter((a) => {
    const row = rows.rows[a.index]
    return row === undefined || row.hash !== a.hash || row.id !== a.id
  })
  expect(missing).toEqual([])
  expect(new Set(acks.map((a) => a.index)).size).toBe(acks.length)

  const report = await Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(PostgresLedger.open(url, { readOnly: true }), (s) => Ledger.verifyStorage(s, [keys.publicKeyPem]))
    )
  )
  expect(report).toMatchObject({ ok: true, length: records })
  expect(report.checkpointsVerified).toBeGreaterThan(0)

  const sum = (f: (x: Instance) => number) => instances.reduce((n, x) => n + f(x), 0)
  expect(terminations).toBeGreaterThan(0)
  expect(sum((x) => x.stats.retries)).toBeGreaterThan(0)
  expect(acks.length).toBeGreaterThan(1000)
  console.log(
    `postgres multi-writer: ${INSTANCES} instances × ${WRITERS} writers, ${DURATION_MS} ms: ${records} records, ` +
      `${acks.length} acknowledged, ${sum((x) => x.failed)} appends failed, ${terminations} sessions terminated ` +
      `in ${rounds} rounds, ${sum((x) => x.stats.commits)} commits, ${sum((x) => x.stats.retries)} retries ` +
      `(${sum((x) => x.stats.recovered)} found committed by key), ${report.checkpointsVerified} checkpoints`
  )
}, 60_000)
