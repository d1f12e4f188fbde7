/**
 * Faults of the services behind the reference app, made with a TCP proxy between one app and the machine's service:
 * PostgreSQL unreachable → `503 LEDGER_UNAVAILABLE`, nothing executes, and the app recovers when it returns; Redis (the
 * shared cache) unreachable → admissions still decided correctly; the queues unreachable → `503 POOL_UNAVAILABLE`,
 * nothing executes.
 */
import type { Ledger } from "@egl/core"
import { Config, start, type Running } from "@egl/serving-api"
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { tcpProxy } from "../support/tcpProxy.ts"
import { cleanUp, deploy, deployBody, ledgerUrl, redisUrl, startWorker, stopProcess, uniqueName } from "./services.ts"

const schema = uniqueName("faults")
const prefix = schema.replaceAll("_", "-")
const dataDir = mkdtempSync(join(tmpdir(), "egl-faults-"))
const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
  await cleanUp(schema, prefix)
  rmSync(dataDir, { recursive: true, force: true })
}, 60_000)

const records = async (app: Running) => {
  const { size } = await app.governance.head()
  return (await app.governance.records(0, size)) as ReadonlyArray<Ledger.LedgerRecord>
}
const problem = async (res: Response) => (await res.json()) as { status: number; reasonCodes: string[] }

describe("PostgreSQL unreachable", () => {
  it("answers 503 LEDGER_UNAVAILABLE, executes nothing, and recovers when the database returns", async () => {
    const proxy = await tcpProxy(Number(new URL(ledgerUrl(schema)).port || 5432))
    const app = await start(
      Config.fromEnv({
        EGL_LEDGER: ledgerUrl(`${schema}_pg`, proxy.port),
        EGL_DATA_DIR: dataDir,
        PORT: "0",
        LOG_LEVEL: "silent"
      })
    )
    cleanups.push(async () => {
      await app.stop()
      await proxy.close()
      await cleanUp(`${schema}_pg`, prefix)
    })
    expect((await deploy(app.url, "egl-demo-alice", deployBody("dev", 1))).status).toBe(201)

    await proxy.cut()
    for (let i = 0; i < 3; i++) {
      const res = await deploy(app.url, "egl-demo-alice", deployBody("dev", 1))
      expect(res.status).toBe(503)
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/)
      expect(await problem(res)).toMatchObject({ status: 503, reasonCodes: ["LEDGER_UNAVAILABLE"] })
    }
    // A denial cannot be recorded either: it is a 503 too, never an unrecorded 403.
    expect((await deploy(app.url, "egl-demo-carol", deployBody("dev", 1))).status).toBe(503)

    await proxy.restore()
    let status = 0
    for (let i = 0; i < 20 && status !== 201; i++) {
      status = (await deploy(app.url, "egl-demo-alice", deployBody("dev", 1))).status
      if (status !== 201) await new Promise((r) => setTimeout(r, 250))
    }
    expect(status).toBe(201)
    const all = await records(app)
    // Nothing was admitted while the database was away: 2 admitted decisions (before and after), each executed once.
    const decisions = all.filter((r) => r.kind === "decision").map((r) => JSON.parse(r.body).decision.outcome)
    expect(decisions.filter((o: string) => o === "admitted")).toHaveLength(2)
    expect(all.filter((r) => r.kind === "execution")).toHaveLength(4)
    expect((await app.governance.verifyLedger()).ok).toBe(true)
  }, 60_000)
})

describe("Redis unreachable (shared cache)", () => {
  it("admissions are still decided correctly, and quickly", async () => {
    const proxy = await tcpProxy(Number(new URL(redisUrl()).port || 6379))
    const app = await start(
      Config.fromEnv({
        EGL_LEDGER: "memory",
        EGL_CACHE: "redis",
        REDIS_URL: redisUrl(proxy.port),
        EGL_REDIS_PREFIX: prefix,
        EGL_DATA_DIR: dataDir,
        PORT: "0",
        LOG_LEVEL: "silent"
      })
    )
    cleanups.push(async () => {
      await app.stop()
      await proxy.close()
    })
    await proxy.cut()
    const started = performance.now()
    expect((await deploy(app.url, "egl-demo-alice", deployBody("dev", 1))).status).toBe(201)
    expect(await problem(await deploy(app.url, "egl-demo-carol", deployBody("dev", 1)))).toMatchObject({
      reasonCodes: ["POLICY_DENY"]
    })
    expect(await problem(await deploy(app.url, "egl-demo-alice", deployBody("dev", 9)))).toMatchObject({
      reasonCodes: ["RESOURCE_LIMIT_EXCEEDED"]
    })
    expect(performance.now() - started).toBeLessThan(5000)
    await proxy.restore()
    expect((await deploy(app.url, "egl-demo-bob", deployBody("dev", 1))).status).toBe(201)
  }, 60_000)
})

describe("queues unreachable (BullMQ pools)", () => {
  it("answers 503 POOL_UNAVAILABLE and executes nothing; deployments run again once the queues return", async () => {
    const proxy = await tcpProxy(Number(new URL(redisUrl()).port || 6379))
    const env = {
      EGL_LEDGER: ledgerUrl(schema),
      EGL_POOLS: "bullmq",
      EGL_REDIS_PREFIX: prefix,
      EGL_DATA_DIR: dataDir
    }
    const app = await start(Config.fromEnv({ ...env, REDIS_URL: redisUrl(proxy.port), PORT: "0", LOG_LEVEL: "silent" }))
    // The worker reaches Redis directly: only the API's way to the queues is cut.
    const worker: ChildProcess = await startWorker(2, { ...env, REDIS_URL: redisUrl() })
    cleanups.push(async () => {
      await stopProcess(worker)
      await app.stop()
      await proxy.close()
    })
    expect((await deploy(app.url, "egl-demo-alice", deployBody("dev", 1))).status).toBe(201)

    await proxy.cut()
    const res = await deploy(app.url, "egl-demo-alice", deployBody("dev", 1))
    expect(res.status).toBe(503)
    const body = (await res.json()) as { reasonCodes: string[] }
    expect(body.reasonCodes).toEqual(["POOL_UNAVAILABLE"])
    const all = await records(app)
    const last = all.filter((r) => r.kind === "decision").at(-1)!
    // Admitted, but never dispatched: no execution record, and its grant stays unused until it expires.
    expect(JSON.parse(last.body).decision.outcome).toBe("admitted")
    expect(all.filter((r) => r.kind === "execution" && r.ref === last.ref)).toHaveLength(0)

    await proxy.restore()
    let status = 0
    for (let i = 0; i < 40 && status !== 201; i++) {
      status = (await deploy(app.url, "egl-demo-alice", deployBody("dev", 1))).status
      if (status !== 201) await new Promise((r) => setTimeout(r, 250))
    }
    expect(status).toBe(201)
    expect((await app.governance.verifyLedger()).ok).toBe(true)
  }, 90_000)
})
