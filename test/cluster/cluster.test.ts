/**
 * The reference app past one machine: two API instances and tier 2 / tier 3 workers (child processes) on one
 * PostgreSQL ledger and one Redis. Both instances decide alike and append to one chain; every admitted deployment runs
 * on a worker of its granted tier, which records the execution before the API answers.
 */
import type { Ledger } from "@egl/core"
import { Config, start, type Running } from "@egl/serving-api"
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { cleanUp, deploy, deployBody, ledgerUrl, REDIS_URL, startWorker, stopProcess, uniqueName } from "./services.ts"

const schema = uniqueName("cluster")
const prefix = schema.replaceAll("_", "-")
const dataDir = mkdtempSync(join(tmpdir(), "egl-cluster-"))
const env = {
  EGL_LEDGER: ledgerUrl(schema),
  EGL_POOLS: "bullmq",
  EGL_CACHE: "redis",
  REDIS_URL,
  EGL_REDIS_PREFIX: prefix,
  EGL_DATA_DIR: dataDir
}
const apis: Array<Running> = []
const workers: Array<ChildProcess> = []

beforeAll(async () => {
  // The first instance creates the schema (migrations run once even when instances start together).
  apis.push(await start(Config.fromEnv({ ...env, PORT: "0", LOG_LEVEL: "silent" })))
  apis.push(await start(Config.fromEnv({ ...env, PORT: "0", LOG_LEVEL: "silent" })))
  workers.push(await startWorker(2, env), await startWorker(3, env))
}, 90_000)

afterAll(async () => {
  for (const w of workers) await stopProcess(w)
  for (const a of apis) await a.stop()
  await cleanUp(schema, prefix)
  rmSync(dataDir, { recursive: true, force: true })
}, 60_000)

const escalation = { reason: "PRIVILEGED_MUTATION", justification: "release" }
const rows = [
  { key: "egl-demo-alice", body: deployBody("dev", 2), status: 201, tier: 2 },
  { key: "egl-demo-carol", body: deployBody("dev", 1), status: 403, code: "POLICY_DENY" },
  { key: "egl-demo-bob", body: deployBody("prod", 8, { escalation }), status: 201, tier: 3 },
  { key: "egl-demo-alice", body: deployBody("prod", 1, { escalation }), status: 403, code: "ESCALATION_NOT_APPROVED" },
  {
    key: "egl-demo-alice",
    body: { ...deployBody("dev", 1), resources: { gpus: 1, memoryGiB: 8, replicas: 7 } },
    status: 201,
    tier: 2
  },
  { key: "egl-demo-bob", body: deployBody("prod", 32, { escalation }), status: 403, code: "RESOURCE_LIMIT_EXCEEDED" }
] as const

it("both instances decide every row alike; admitted deployments run on their tier's worker", async () => {
  const admitted: Array<{ id: string; tier: number; worker: string }> = []
  for (let round = 0; round < 2; round++) {
    for (const [i, row] of rows.entries()) {
      const api = apis[(i + round) % 2]!
      const res = await deploy(api.url, row.key, row.body)
      const json = (await res.json()) as Record<string, any>
      expect(res.status, JSON.stringify(json)).toBe(row.status)
      if (row.status === 201) {
        expect(json["envelope"].granted.tier).toBe(row.tier)
        expect(json["deployment"]).toMatchObject({ tier: row.tier, pool: `pool-t${row.tier}` })
        expect(json["deployment"].resources).toEqual(json["envelope"].granted.resources)
        expect(json["worker"]).toMatch(new RegExp(`/pool-t${row.tier}$`))
        admitted.push({ id: json["envelope"].id, tier: row.tier, worker: json["worker"] })
      } else {
        expect(json["reasonCodes"]).toEqual([row.code])
      }
    }
  }
  expect(admitted).toHaveLength(6)

  // One chain: both instances see the same records, and it verifies.
  const [a, b] = apis
  const headA = await a!.governance.head()
  const headB = await b!.governance.head()
  expect(headB).toEqual(headA)
  const records = (await a!.governance.records(0, headA.size)) as ReadonlyArray<Ledger.LedgerRecord>
  expect(records.filter((r) => r.kind === "decision")).toHaveLength(12)
  for (const { id, tier, worker } of admitted) {
    const executions = records
      .filter((r) => r.kind === "execution" && r.ref === id)
      .map((r) => JSON.parse(r.body) as { phase: string; worker: string; pool?: string })
    expect(executions.map((e) => e.phase)).toEqual(["dispatched", "completed"])
    expect(executions[0]).toMatchObject({ pool: `pool-t${tier}`, worker })
  }
  const verify = await (await fetch(`${b!.url}/ledger/verify`)).json()
  expect(verify).toMatchObject({ ok: true, length: headA.size })
}, 60_000)

it("a grant cannot be used twice across instances: the replayed envelope is refused and recorded", async () => {
  const res = await deploy(apis[0]!.url, "egl-demo-bob", deployBody("prod", 1, { escalation }))
  expect(res.status).toBe(201)
  const { envelope } = (await res.json()) as { envelope: any }
  // The worker used the grant; presenting the envelope again through the other instance's governance is refused.
  const replay = await apis[1]!.governance.dispatch(envelope)
  expect(!replay.ok && replay.error._tag === "GrantRejected" && replay.error.code).toBe("GRANT_REUSED")
})
