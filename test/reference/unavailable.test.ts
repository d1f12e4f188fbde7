/**
 * SPEC §11: `503` when the ledger cannot answer (`LEDGER_UNAVAILABLE`), and nothing executes; the service recovers when
 * the ledger does.
 */
import { createGovernance, Ledger } from "@egl/core"
import { createApp, Demo } from "@egl/serving-api"
import { Effect } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, expect, it } from "vitest"

const inner = Ledger.makeMemoryStorage()
const state = { failing: false }
const storage: Ledger.LedgerStorage = {
  ...inner,
  append: (drafts) =>
    state.failing ? Effect.fail(new Ledger.LedgerUnavailable({ detail: "disk full" })) : inner.append(drafts)
}
let url = ""
let deployments = 0
let stop: () => Promise<void>

beforeAll(async () => {
  const governance = await createGovernance({
    registry: Demo.registry,
    policy: Demo.policy,
    ledger: { storage: Effect.succeed(storage) }
  })
  const { app } = createApp({
    governance,
    apiKeys: Demo.apiKeys,
    deploy: async () => {
      deployments++
      return { deployed: true }
    }
  })
  const server = createServer(app).listen(0, "127.0.0.1")
  await new Promise((r) => server.once("listening", r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  stop = async () => {
    await new Promise((r) => server.close(r))
    await governance.close()
  }
})
afterAll(() => stop())

const deploy = () =>
  fetch(`${url}/serving/deploy_model`, {
    method: "POST",
    headers: { authorization: "Bearer egl-demo-alice", "content-type": "application/json" },
    body: JSON.stringify({
      model: { id: "m", version: "1" },
      resources: { gpus: 1, memoryGiB: 8, replicas: 1 },
      environment: "dev"
    })
  })

it("answers 503 LEDGER_UNAVAILABLE while the ledger cannot record, executes nothing, and recovers", async () => {
  state.failing = true
  for (let i = 0; i < 5; i++) {
    const res = await deploy()
    expect(res.status).toBe(503)
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    expect(await res.json()).toMatchObject({ status: 503, reasonCodes: ["LEDGER_UNAVAILABLE"] })
  }
  const verify = await fetch(`${url}/ledger/verify`)
  expect(verify.status).toBe(200)
  expect(deployments).toBe(0)

  state.failing = false
  const res = await deploy()
  expect(res.status).toBe(201)
  expect(await res.json()).toMatchObject({ deployment: { deployed: true }, envelope: { state: "admitted" } })
  expect(deployments).toBe(1)
})
