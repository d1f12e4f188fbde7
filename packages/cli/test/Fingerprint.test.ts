import { createHash } from "node:crypto"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { Attestor } from "@egl/core"
import { describe, expect, it } from "vitest"
import { Fingerprint } from "../src/index.ts"
import { egl, eglJson, tempDir } from "./support/ledgers.ts"

const dir = tempDir("fingerprint")

describe("egl fingerprint", () => {
  it("prints the manifest of this process and its fingerprint, the same on every run", async () => {
    const first = await eglJson("fingerprint")
    expect(first.code).toBe(0)
    const { fingerprint, manifest } = first.json
    expect(Object.keys(first.json).sort()).toEqual(["fingerprint", "manifest", "ok"])
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/)
    expect(fingerprint).toBe(Attestor.fingerprint(manifest))
    expect(manifest).toMatchObject({
      interpreter: { name: "node", version: process.versions.node },
      os: { platform: process.platform, arch: process.arch },
      adapterVersion: "none",
      sandboxProfile: "in-process"
    })
    // The default lockfile is the working directory's, keyed by its bare name.
    const lockfile = Fingerprint.defaultLockfiles()
    expect(Object.keys(manifest.lockfileDigests)).toEqual(lockfile)
    if (existsSync("pnpm-lock.yaml")) expect(lockfile).toEqual(["pnpm-lock.yaml"])
    expect((await eglJson("fingerprint")).json).toEqual(first.json)
  })

  it("keys lockfiles by the path as given and changes with any input", async () => {
    const path = join(dir, "package-lock.json")
    writeFileSync(path, '{"lockfileVersion":3}\n')
    const given = relative(process.cwd(), path)
    const base = await eglJson("fingerprint", "--lockfile", given)
    expect(base.json["manifest"].lockfileDigests).toEqual({
      [given]: createHash("sha256").update(readFileSync(path)).digest("hex")
    })
    expect((await eglJson("fingerprint", "--lockfile", given)).json["fingerprint"]).toBe(base.json["fingerprint"])

    const adapter = await eglJson("fingerprint", "--lockfile", given, "--adapter-version", "@egl/express@0.1.0")
    expect(adapter.json["manifest"].adapterVersion).toBe("@egl/express@0.1.0")
    expect(adapter.json["fingerprint"]).not.toBe(base.json["fingerprint"])
    const sandbox = await eglJson("fingerprint", "--lockfile", given, "--sandbox-profile", "node-permission/1")
    expect(sandbox.json["manifest"].sandboxProfile).toBe("node-permission/1")
    expect(sandbox.json["fingerprint"]).not.toBe(base.json["fingerprint"])

    writeFileSync(path, '{"lockfileVersion":3,"packages":{}}\n')
    expect((await eglJson("fingerprint", "--lockfile", given)).json["fingerprint"]).not.toBe(base.json["fingerprint"])
  })

  it("prints a concise human summary", async () => {
    const { code, out } = await egl("fingerprint", "--adapter-version", "test")
    expect(code).toBe(0)
    expect(out).toMatch(/^[0-9a-f]{64}\n/)
    expect(out).toMatch(new RegExp(`interpreter\\s+node ${process.versions.node.replace(/\./g, "\\.")}\\n`))
    expect(out).toMatch(/adapter\s+test\n/)
  })

  it("fails with exit 3 on a lockfile it cannot read, and exit 2 on an argument it does not know", async () => {
    const missing = await eglJson("fingerprint", "--lockfile", "no/such/pnpm-lock.yaml")
    expect(missing).toMatchObject({ code: 3, json: { ok: false, error: { code: "cannot-open" } } })
    expect(missing.json["error"].message).toMatch(/cannot read lockfile no\/such\/pnpm-lock\.yaml/)
    const extra = await egl("fingerprint", "now")
    expect(extra.code).toBe(2)
    expect(extra.err).toMatch(/unexpected argument "now"/)
  })
})
