import { beforeAll, describe, expect, it } from "vitest"
import { build, egl, eglJson, postgresUrl, psql, publicKeyFile, type Built } from "./support/ledgers.ts"

let ledger: Built
let schema: string
beforeAll(async () => {
  ledger = await build("postgres")
  schema = new URL(ledger.path).searchParams.get("schema")!
  psql(`CREATE TABLE ${schema}.pristine AS SELECT * FROM ${schema}.records`)
  psql(`CREATE TABLE ${schema}.pristine_head AS SELECT * FROM ${schema}.head`)
}, 60_000)

/** Tampers with the ledger's tables (`$S` is the schema), runs `egl`, and puts the pristine rows back. */
const tampered = async (sql: string, ...argv: ReadonlyArray<string>) => {
  psql(sql.replaceAll("$S", schema))
  try {
    return await eglJson(...argv)
  } finally {
    psql(
      `BEGIN;
       DELETE FROM ${schema}.records; INSERT INTO ${schema}.records SELECT * FROM ${schema}.pristine;
       DELETE FROM ${schema}.head; INSERT INTO ${schema}.head SELECT * FROM ${schema}.pristine_head;
       COMMIT`
    )
  }
}

const counts = () =>
  psql(`SELECT (SELECT count(*) FROM ${schema}.records) || ',' || (SELECT count(*) FROM ${schema}.checkpoints)`)

describe("egl on a PostgreSQL ledger", () => {
  it("reports an intact ledger with every checkpoint signed by the given key (exit 0), and writes nothing", async () => {
    const before = counts()
    const { code, out, err } = await egl("ledger", "verify", ledger.path, "--public-key", publicKeyFile)
    expect(err).toBe("")
    expect(code).toBe(0)
    expect(out).toMatch(new RegExp(`^postgres://[^\\n]*\\?schema=${schema}: intact\\n`))
    expect(out).toMatch(new RegExp(`records\\s+${ledger.size}\\n`))
    expect(out).toMatch(/checkpoints\s+\d+ verified, signed by a trusted key \(1 given\)/)
    const { code: jsonCode, json } = await eglJson("ledger", "verify", ledger.path, "--public-key", publicKeyFile)
    expect(jsonCode).toBe(0)
    expect(json).toMatchObject({ ok: true, length: ledger.size, signatures: "verified" })
    expect(json["lastCheckpoint"]).toMatchObject({ size: ledger.size, headHash: json["headHash"] })
    expect(counts()).toBe(before)
  })

  it("finds an edited row at its exact index (exit 1)", async () => {
    for (const k of [0, 3, ledger.size - 1]) {
      const { code, json } = await tampered(
        `UPDATE $S.records SET body = body || ' ' WHERE idx = ${k}`,
        "ledger",
        "verify",
        ledger.path,
        "--public-key",
        publicKeyFile
      )
      expect(code, `record ${k}`).toBe(1)
      expect(json, `record ${k}`).toMatchObject({ ok: false, firstBadIndex: k, failure: "digest-mismatch" })
    }
    const edited = await tampered(
      "UPDATE $S.records SET at = '2020-01-01T00:00:00.000Z' WHERE idx = 5",
      "ledger",
      "verify",
      ledger.path,
      "--public-key",
      publicKeyFile
    )
    expect(edited).toMatchObject({ code: 1, json: { ok: false, firstBadIndex: 5, failure: "hash-mismatch" } })
    const human = await egl("ledger", "verify", ledger.path)
    expect(human.code).toBe(0)
  })

  it("finds a deleted row, and a cut tail against the head row and the last checkpoint (exit 1)", async () => {
    const deleted = await tampered("DELETE FROM $S.records WHERE idx = 4", "ledger", "verify", ledger.path)
    expect(deleted).toMatchObject({ code: 1, json: { firstBadIndex: 4, failure: "index-mismatch" } })
    const cut = ledger.size - 2
    const tail = await tampered(`DELETE FROM $S.records WHERE idx >= ${cut}`, "ledger", "verify", ledger.path)
    expect(tail).toMatchObject({ code: 1, json: { firstBadIndex: cut, failure: "corrupt-record" } })
    expect(tail.json["detail"]).toBe(`the head row counts ${ledger.size} records but the table ends at ${cut}`)
    const both = await tampered(
      `DELETE FROM $S.records WHERE idx >= ${cut};
       UPDATE $S.head SET size = p.idx + 1, hash = p.hash FROM $S.pristine p WHERE p.idx = ${cut - 1}`,
      "ledger",
      "verify",
      ledger.path,
      "--public-key",
      publicKeyFile
    )
    expect(both).toMatchObject({ code: 1, json: { firstBadIndex: cut, failure: "truncated", length: cut } })
  })

  it("shows an envelope and its history from the PostgreSQL ledger", async () => {
    const { code, json } = await eglJson("envelope", "show", ledger.executed, "--ledger", ledger.path)
    expect(code).toBe(0)
    expect(json).toMatchObject({ ok: true, seal: { verified: true } })
    expect((json["history"] as ReadonlyArray<{ kind: string }>).map((h) => h.kind)).toEqual([
      "decision",
      "escalation",
      "execution",
      "execution"
    ])
    const missing = await eglJson("envelope", "show", "env-nobody", "--ledger", ledger.path)
    expect(missing.code).toBe(4)
  })

  it("refuses a schema without a ledger, and creates nothing (exit 3)", async () => {
    const url = postgresUrl()
    const missingSchema = new URL(url).searchParams.get("schema")!
    const { code, out, err } = await egl("ledger", "verify", url)
    expect(code).toBe(3)
    expect(out).toBe("")
    expect(err).toMatch(
      new RegExp(
        `^egl ledger verify: cannot open the ledger: postgres://.*\\?schema=${missingSchema}: no ledger in schema`
      )
    )
    expect(psql(`SELECT count(*) FROM pg_namespace WHERE nspname = '${missingSchema}'`)).toBe("0")
    const invalid = await egl("ledger", "verify", `${url.split("?")[0]}?schema=Robert%27)%3B`)
    expect(invalid.code).toBe(3)
    expect(invalid.err).toMatch(/invalid schema name "Robert'\);"/)
  })
})
