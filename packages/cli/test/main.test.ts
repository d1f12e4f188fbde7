import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { beforeAll, describe, expect, it } from "vitest"
import { main } from "../src/index.ts"
import { capture } from "../src/Io.ts"
import { build, copy, egl, publicKeyFile, tamper, type Built } from "./support/ledgers.ts"

const root = fileURLToPath(new URL("../../..", import.meta.url))

describe("egl", () => {
  it("prints its usage with every command and the exit codes on --help (exit 0)", async () => {
    for (const flag of ["--help", "-h", "help"]) {
      const { code, out, err } = await egl(flag)
      expect(code).toBe(0)
      expect(err).toBe("")
      expect(out).toMatch(/^Usage: egl <command>/)
      for (const command of ["ledger verify", "envelope show", "fingerprint", "policy snapshot"]) {
        expect(out).toContain(`  ${command} `)
      }
      for (const exit of [
        "0   ok",
        "1   the ledger is not intact",
        "2   usage error",
        "3   cannot open",
        "4   not found"
      ]) {
        expect(out).toContain(exit)
      }
    }
    for (const [command, usage] of [
      [["envelope", "show"], "Usage: egl envelope show <id> --ledger <ledger-url>"],
      [["fingerprint"], "Usage: egl fingerprint [--lockfile <path>]..."],
      [["policy", "snapshot"], "Usage: egl policy snapshot <file>"]
    ] as const) {
      const { code, out } = await egl(...command, "--help")
      expect(code).toBe(0)
      expect(out.startsWith(usage)).toBe(true)
      expect(out).toContain("Exit codes:")
    }
  })

  it("answers a missing or unknown command with its usage on stderr (exit 2)", async () => {
    const none = await egl()
    expect(none.code).toBe(2)
    expect(none.out).toBe("")
    expect(none.err).toMatch(/^egl: missing command\n\nUsage: egl <command>/)

    const unknown = await egl("verify", "sqlite:x.db")
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(/^egl: unknown command "verify"\n\nUsage: egl <command>/)

    const sub = await egl("ledger", "check")
    expect(sub.code).toBe(2)
    expect(sub.err).toMatch(
      /^egl: unknown command "ledger check"\n\nUsage: egl ledger <command>\n\nCommands:\n  ledger verify/
    )

    const group = await egl("policy", "--help")
    expect(group.code).toBe(0)
    expect(group.out).toMatch(/^Usage: egl policy <command>\n\nCommands:\n  policy snapshot /)
  })

  it("prints errors as one JSON document on stdout with --json", async () => {
    const io = capture()
    expect(await main(["frobnicate", "--json"], io)).toBe(2)
    expect(io.err).toBe("")
    expect(JSON.parse(io.out)).toEqual({ ok: false, error: { code: "usage", message: 'unknown command "frobnicate"' } })
  })

  it("prints its version", async () => {
    const { code, out } = await egl("--version")
    expect(code).toBe(0)
    expect(out).toMatch(/^\d+\.\d+\.\d+\n$/)
  })

  describe("as a process", () => {
    let sqlite: Built
    beforeAll(async () => {
      sqlite = await build("sqlite")
    }, 60_000)

    it("runs from its entry module and exits with the command's code", async () => {
      const path = copy(sqlite)
      tamper(path, (db) => db.prepare("UPDATE records SET hash = ? WHERE idx = 2").run("0".repeat(64)))
      const args = ["ledger", "verify", `sqlite:${path}`, "--public-key", publicKeyFile, "--json"]
      const child = spawn(
        process.execPath,
        ["--conditions=@egl/source", "--import", "tsx", "packages/cli/src/main.ts", ...args],
        {
          cwd: root
        }
      )
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (chunk) => (stdout += chunk))
      child.stderr.on("data", (chunk) => (stderr += chunk))
      const status = await new Promise<number | null>((resolve, reject) => {
        child.on("error", reject)
        child.on("close", resolve)
      })
      expect(stderr).toBe("")
      expect(status).toBe(1)
      expect(JSON.parse(stdout)).toMatchObject({ ok: false, firstBadIndex: 2, failure: "hash-mismatch" })
    }, 60_000)
  })
})
