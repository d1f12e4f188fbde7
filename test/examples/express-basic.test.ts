import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, expect, it } from "vitest"
import { createApp } from "../../examples/express-basic/src/app.ts"

let url = ""
let stop: () => Promise<void>
beforeAll(async () => {
  const { app, close } = await createApp()
  const server = app.listen(0, "127.0.0.1")
  await new Promise((r) => server.once("listening", r))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  stop = async () => {
    await new Promise((r) => server.close(r))
    await close()
  }
})
afterAll(() => stop())

const call = (path: string, key: string, input: unknown) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ scope: { environment: "dev" }, input })
  })

it("admits the analyst at tier 2 and denies the guest", async () => {
  const ok = await call("/inference/predict", "example-key-ana", { prompt: "hello" })
  expect(ok.status).toBe(200)
  expect(await ok.json()).toMatchObject({ tier: 2, prediction: "odd" })
  const denied = await call("/inference/predict", "example-key-gus", { prompt: "hello" })
  expect(denied.status).toBe(403)
  expect(((await denied.json()) as { reasonCodes: string[] }).reasonCodes).toEqual(["POLICY_DENY"])
})

it("answers a repeated transform from the cache", async () => {
  const first = await call("/text/normalize", "example-key-gus", { text: "  A  B " })
  const second = await call("/text/normalize", "example-key-gus", { text: "  A  B " })
  expect(await first.json()).toEqual({ text: "a b" })
  expect(second.headers.get("egl-cache")).toBe("hit")
  expect(await second.json()).toEqual({ text: "a b" })
})
