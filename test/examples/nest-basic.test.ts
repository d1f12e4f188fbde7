/**
 * examples/nest-basic: the example's application, started on a free port, admits and denies over HTTP.
 */
import type { INestApplication } from "@nestjs/common"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createApp } from "../../examples/nest-basic/src/app.ts"

const body = (gpus: number) =>
  JSON.stringify({
    model: { id: "llama-3-8b", version: "2026.11.1" },
    resources: { gpus, replicas: 1 },
    environment: "dev"
  })

describe("examples/nest-basic", () => {
  let app: INestApplication
  let url: string
  beforeAll(async () => {
    app = await createApp()
    await app.listen(0, "127.0.0.1")
    url = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`
  })
  afterAll(async () => {
    await app?.close()
  })

  const deploy = (key: string, gpus: number) =>
    fetch(`${url}/serving/deploy_model`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: body(gpus)
    })

  it("admits alice's deployment to dev at tier 2", async () => {
    const res = await deploy("egl-demo-alice", 2)
    expect(res.status).toBe(201)
    const { envelope } = (await res.json()) as { envelope: unknown }
    expect(envelope).toMatchObject({
      state: "admitted",
      subject: { id: "alice" },
      granted: { tier: 2, resources: { gpus: 2 } },
      decision: { outcome: "admitted" },
      ledger: { index: expect.any(Number) }
    })
  })

  it("denies alice 8 GPUs with a recorded problem, and the ledger verifies", async () => {
    const res = await deploy("egl-demo-alice", 8)
    expect(res.status).toBe(403)
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    expect(await res.json()).toMatchObject({
      status: 403,
      reasonCodes: expect.arrayContaining(["RESOURCE_LIMIT_EXCEEDED"]),
      envelopeId: expect.any(String)
    })
    const verify = await (await fetch(`${url}/ledger/verify`)).json()
    // The policy snapshot, the admission (decision, dispatched, completed) and the denial.
    expect(verify).toMatchObject({ ok: true, length: 5 })
  })
})
