import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import {
  build,
  copy,
  dir,
  egl,
  eglJson,
  otherPublicKeyFile,
  privateKeyFile,
  publicKeyFile,
  tamper,
  type Built
} from "./support/ledgers.ts"

let sqlite: Built
let file: Built
beforeAll(async () => {
  ;[sqlite, file] = await Promise.all([build("sqlite"), build("file")])
}, 60_000)

describe("egl ledger verify", () => {
  it("reports an intact SQLite ledger with every checkpoint signed by the given key (exit 0)", async () => {
    const { code, out, err } = await egl("ledger", "verify", `sqlite:${sqlite.path}`, "--public-key", publicKeyFile)
    expect(code).toBe(0)
    expect(err).toBe("")
    expect(out).toContain(`sqlite:${sqlite.path}: intact`)
    expect(out).toMatch(new RegExp(`records\\s+${sqlite.size}\\n`))
    expect(out).toMatch(/checkpoints\s+\d+ verified, signed by a trusted key \(1 given\)/)
    expect(out).not.toContain("signatures not checked")

    const { code: jsonCode, json } = await eglJson(
      "ledger",
      "verify",
      `sqlite:${sqlite.path}`,
      "--public-key",
      publicKeyFile
    )
    expect(jsonCode).toBe(0)
    expect(json).toMatchObject({
      ok: true,
      ledger: `sqlite:${sqlite.path}`,
      length: sqlite.size,
      signatures: "verified"
    })
    expect(json["checkpointsVerified"]).toBeGreaterThan(1)
    expect(json["lastCheckpoint"]).toMatchObject({ size: sqlite.size, headHash: json["headHash"] })
  })

  it("reports an intact JSONL file ledger (exit 0), and accepts a private key file for its public half", async () => {
    const { code, json } = await eglJson("ledger", "verify", `file:${file.path}`, "--public-key", privateKeyFile)
    expect(code).toBe(0)
    expect(json).toMatchObject({ ok: true, ledger: `file:${file.path}`, length: file.size, signatures: "verified" })
  })

  it("without --public-key still verifies the chain and checkpoints, and says signatures were not checked", async () => {
    const { code, out } = await egl("ledger", "verify", `sqlite:${sqlite.path}`)
    expect(code).toBe(0)
    expect(out).toContain("intact")
    expect(out).toMatch(/size and head hash only/)
    expect(out).toContain("signatures not checked: no --public-key")
    const { json } = await eglJson("ledger", "verify", `file:${file.path}`)
    expect(json).toMatchObject({ ok: true, signatures: "not-checked", publicKeys: 0 })
    expect(json["note"]).toBe("signatures not checked: no --public-key")
  })

  it("finds an edited SQLite column at its exact index (exit 1)", async () => {
    for (const k of [0, 3, sqlite.size - 1]) {
      const path = copy(sqlite)
      tamper(path, (db) => db.prepare("UPDATE records SET body = body || ' ' WHERE idx = ?").run(k))
      const { code, out } = await egl("ledger", "verify", `sqlite:${path}`, "--public-key", publicKeyFile)
      expect(code, `record ${k}`).toBe(1)
      expect(out).toContain(`sqlite:${path}: NOT INTACT`)
      expect(out).toMatch(new RegExp(`first bad\\s+${k}\\n`))
      expect(out).toMatch(/failure\s+digest-mismatch\n/)
      expect(out).toMatch(/detail\s+payload does not match its digest\n/)
    }
    const path = copy(sqlite)
    tamper(path, (db) => db.prepare("UPDATE records SET at = '2020-01-01T00:00:00.000Z' WHERE idx = 5").run())
    const { code, json } = await eglJson("ledger", "verify", `sqlite:${path}`, "--public-key", publicKeyFile)
    expect(code).toBe(1)
    expect(json).toMatchObject({ ok: false, firstBadIndex: 5, failure: "hash-mismatch", length: sqlite.size })
    expect(json["error"]).toBeUndefined()
  })

  it("finds a deleted row by the gap it leaves (exit 1)", async () => {
    const path = copy(sqlite)
    tamper(path, (db) => db.prepare("DELETE FROM records WHERE idx = ?").run(4))
    const { code, json } = await eglJson("ledger", "verify", `sqlite:${path}`, "--public-key", publicKeyFile)
    expect(code).toBe(1)
    expect(json).toMatchObject({ ok: false, firstBadIndex: 4, failure: "index-mismatch" })
  })

  it("finds an edited line of a JSONL ledger (exit 1)", async () => {
    const path = copy(file)
    const lines = readFileSync(path, "utf8").split("\n")
    lines[2] = lines[2]!.replace('"kind":"decision"', '"kind":"incident"')
    writeFileSync(path, lines.join("\n"))
    const { code, json } = await eglJson("ledger", "verify", `file:${path}`, "--public-key", publicKeyFile)
    expect(code).toBe(1)
    expect(json).toMatchObject({ ok: false, firstBadIndex: 2, failure: "hash-mismatch" })
  })

  it("catches a cut tail against the last stored checkpoint (exit 1, truncated)", async () => {
    const path = copy(sqlite)
    tamper(path, (db) => db.prepare("DELETE FROM records WHERE idx >= ?").run(sqlite.size - 2))
    const { code, out } = await egl("ledger", "verify", `sqlite:${path}`, "--public-key", publicKeyFile)
    expect(code).toBe(1)
    expect(out).toMatch(new RegExp(`first bad\\s+${sqlite.size - 2}\\n`))
    expect(out).toMatch(/failure\s+truncated\n/)
    expect(out).toMatch(new RegExp(`a checkpoint covers \\d+ records but only ${sqlite.size - 2} are present`))
  })

  it("catches a cut tail whose checkpoints were cut too, against a checkpoint retained elsewhere (--checkpoint)", async () => {
    const { json: pristine } = await eglJson("ledger", "verify", `sqlite:${sqlite.path}`, "--public-key", publicKeyFile)
    const retained = join(dir, "retained-checkpoint.json")
    writeFileSync(retained, JSON.stringify(pristine["lastCheckpoint"]))

    const path = copy(sqlite)
    const cut = sqlite.size - 3
    tamper(path, (db) => {
      db.prepare("DELETE FROM records WHERE idx >= ?").run(cut)
      db.prepare("DELETE FROM checkpoints WHERE size > ?").run(cut)
    })
    // The stored checkpoints alone cannot tell: what remains is a consistent, shorter ledger.
    expect((await eglJson("ledger", "verify", `sqlite:${path}`, "--public-key", publicKeyFile)).code).toBe(0)
    const { code, json } = await eglJson(
      "ledger",
      "verify",
      `sqlite:${path}`,
      "--public-key",
      publicKeyFile,
      "--checkpoint",
      retained
    )
    expect(code).toBe(1)
    expect(json).toMatchObject({ ok: false, firstBadIndex: cut, failure: "truncated", length: cut })
    expect(json["trustedCheckpoint"]).toEqual(pristine["lastCheckpoint"])
  })

  it("fails when the checkpoints are not signed by any given key (exit 1)", async () => {
    const { code, out } = await egl("ledger", "verify", `sqlite:${sqlite.path}`, "--public-key", otherPublicKeyFile)
    expect(code).toBe(1)
    expect(out).toMatch(/failure\s+checkpoint-signature\n/)
    expect(out).toMatch(/is not signed by a trusted key/)
    const both = await eglJson(
      "ledger",
      "verify",
      `sqlite:${sqlite.path}`,
      "--public-key",
      otherPublicKeyFile,
      "--public-key",
      publicKeyFile
    )
    expect(both).toMatchObject({ code: 0, json: { ok: true, publicKeys: 2 } })
  })

  it("refuses a missing ledger without creating it (exit 3)", async () => {
    const before = readdirSync(dir)
    for (const url of [`sqlite:${join(dir, "missing.db")}`, `file:${join(dir, "missing.jsonl")}`]) {
      const { code, out, err } = await egl("ledger", "verify", url)
      expect(code, url).toBe(3)
      expect(out).toBe("")
      expect(err).toBe(`egl ledger verify: no ledger at ${url}\n`)
    }
    expect(readdirSync(dir)).toEqual(before)
    expect(existsSync(join(dir, "missing.db"))).toBe(false)
  })

  it("refuses a file that is not a ledger of the named kind (exit 3)", async () => {
    const { code, err } = await egl("ledger", "verify", `sqlite:${file.path}`)
    expect(code).toBe(3)
    expect(err).toMatch(/cannot open the ledger: .*file is not a database/)
  })

  it("refuses an invalid ledger URL, a memory ledger and an unreachable PostgreSQL with a clear message (exit 3)", async () => {
    const invalid = await egl("ledger", "verify", "ledger.db")
    expect(invalid.code).toBe(3)
    expect(invalid.err).toMatch(
      /invalid ledger URL "ledger\.db": expected memory, file:<path>, sqlite:<path> or postgres/
    )

    const memory = await egl("ledger", "verify", "memory")
    expect(memory.code).toBe(3)
    expect(memory.err).toMatch(/memory ledger lives only inside the process.*nothing to open/)

    const postgres = await eglJson("ledger", "verify", "postgres://egl:hunter2@127.0.0.1:1/egl")
    expect(postgres.code).toBe(3)
    expect(postgres.json).toEqual({
      ok: false,
      error: {
        code: "cannot-open",
        message:
          "cannot open the ledger: postgres://egl:***@127.0.0.1:1/egl?schema=public: connect ECONNREFUSED 127.0.0.1:1"
      }
    })
  })

  it("rejects bad key and checkpoint files: unreadable is exit 3, invalid is exit 2", async () => {
    const url = `sqlite:${sqlite.path}`
    const missingKey = await eglJson("ledger", "verify", url, "--public-key", join(dir, "nope.pub"))
    expect(missingKey).toMatchObject({ code: 3, json: { error: { code: "cannot-open" } } })
    expect(missingKey.json["error"].message).toMatch(/cannot read public key file .*nope\.pub: no such file/)

    const garbage = join(dir, "garbage.pub")
    writeFileSync(garbage, "not a key")
    const badKey = await eglJson("ledger", "verify", url, "--public-key", garbage)
    expect(badKey).toMatchObject({ code: 2, json: { error: { code: "invalid-input" } } })

    const notJson = join(dir, "checkpoint.txt")
    writeFileSync(notJson, "{size: 3")
    const badJson = await egl("ledger", "verify", url, "--checkpoint", notJson)
    expect(badJson.code).toBe(2)
    expect(badJson.err).toMatch(/checkpoint file .*checkpoint\.txt is not valid JSON/)

    const notCheckpoint = join(dir, "checkpoint.json")
    writeFileSync(notCheckpoint, JSON.stringify({ size: "three" }))
    const badCheckpoint = await egl("ledger", "verify", url, "--checkpoint", notCheckpoint)
    expect(badCheckpoint.code).toBe(2)
    expect(badCheckpoint.err).toMatch(/does not hold a checkpoint/)
  })

  it("answers bad arguments with its usage (exit 2)", async () => {
    const missing = await egl("ledger", "verify")
    expect(missing.code).toBe(2)
    expect(missing.err).toMatch(/^egl ledger verify: missing <ledger-url>\nUsage: egl ledger verify <ledger-url>/)
    const unknown = await eglJson("ledger", "verify", `sqlite:${sqlite.path}`, "--publickey", publicKeyFile)
    expect(unknown.code).toBe(2)
    expect(unknown.json["error"]).toMatchObject({ code: "usage" })
    expect(unknown.json["error"].message).toMatch(/Unknown option '--publickey'/)
    const help = await egl("ledger", "verify", "--help")
    expect(help).toMatchObject({ code: 0, err: "" })
    expect(help.out).toMatch(/^Usage: egl ledger verify <ledger-url> \[--public-key <pem-file>\]\.\.\./)
    expect(help.out).toMatch(/Exit codes: 0 intact, 1 not intact/)
  })
})
