import { createGovernance, LedgerUrl, Sealer } from "@egl/core"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { createApp } from "../src/App.ts"
import * as Config from "../src/Config.ts"
import * as Demo from "../src/Demo.ts"
import { ledgerOf } from "../src/Server.ts"
import * as SigningKey from "../src/SigningKey.ts"

const dir = mkdtempSync(join(tmpdir(), "egl-serving-api-unit-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("Config.fromEnv", () => {
  it("defaults to port 3000 and the SQLite ledger in the data folder", () => {
    const config = Config.fromEnv({ EGL_DATA_DIR: dir })
    expect(config.port).toBe(3000)
    expect(config.ledger).toEqual({ kind: "sqlite", path: join(dir, "ledger.db") })
    expect(config.bodyLimit).toBe("64kb")
  })

  it("takes EGL_LEDGER and PORT, and refuses invalid ones", () => {
    expect(Config.fromEnv({ EGL_LEDGER: "memory", PORT: "8080" })).toMatchObject({
      port: 8080,
      ledger: { kind: "memory" }
    })
    expect(Config.fromEnv({ EGL_LEDGER: "file:/tmp/l.jsonl" }).ledger).toEqual({ kind: "file", path: "/tmp/l.jsonl" })
    expect(() => Config.fromEnv({ EGL_LEDGER: "mysql://x" })).toThrow(LedgerUrl.LedgerUrlInvalid)
    expect(() => Config.fromEnv({ PORT: "http" })).toThrow(/PORT/)
    expect(ledgerOf(Config.fromEnv({ EGL_LEDGER: "postgres://localhost/test" }))).toMatchObject({
      storage: expect.anything()
    })
    expect(Config.fromEnv({ EGL_CACHE: "redis", EGL_POOLS: "bullmq" })).toMatchObject({
      cache: "redis",
      pools: "bullmq"
    })
    expect(() => Config.fromEnv({ EGL_POOLS: "kafka" })).toThrow(/EGL_POOLS/)
  })
})

describe("SigningKey.loadOrCreate", () => {
  it("creates a private key readable by its owner only, writes the public key beside it, and keeps both", () => {
    const first = SigningKey.loadOrCreate(dir, {})
    expect(statSync(join(dir, "signing-key.pem")).mode & 0o777).toBe(0o600)
    const publicPem = readFileSync(join(dir, "signing-key.pub.pem"), "utf8")
    expect(Sealer.keyIdOf(publicPem)).toHaveLength(16)
    expect(SigningKey.loadOrCreate(dir, {})).toBe(first)
    expect(readFileSync(join(dir, "signing-key.pub.pem"), "utf8")).toBe(publicPem)
  })
})

describe("the dashboard", () => {
  it("escapes what it shows from the ledger", async () => {
    const governance = await createGovernance({ registry: Demo.registry, policy: Demo.policy })
    const { app } = createApp({
      governance,
      apiKeys: { "key-of-eve-0001": { id: `<img src=x onerror="alert(1)">`, kind: "user", roles: ["viewer"] } }
    })
    const server = createServer(app).listen(0, "127.0.0.1")
    await new Promise((r) => server.once("listening", r))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const denied = await fetch(`${url}/serving/deploy_model`, {
        method: "POST",
        headers: { authorization: "Bearer key-of-eve-0001", "content-type": "application/json" },
        body: JSON.stringify({
          model: { id: "m", version: "1" },
          resources: { gpus: 1, memoryGiB: 1, replicas: 1 },
          environment: "dev"
        })
      })
      expect(denied.status).toBe(403)
      const res = await fetch(`${url}/dashboard`)
      expect(res.headers.get("content-security-policy")).toContain("default-src 'none'")
      const html = await res.text()
      expect(html).toContain("&#60;img src=x onerror=&#34;alert(1)&#34;&#62;")
      expect(html).not.toContain("<img")
      expect(html).toContain("POLICY_DENY")
    } finally {
      server.close()
      await governance.close()
    }
  })
})
