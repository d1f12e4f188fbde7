import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as LedgerUrl from "../src/LedgerUrl.ts"

describe("LedgerUrl", () => {
  it("parses every backend's form", () => {
    expect(LedgerUrl.parseSync("memory")).toEqual({ kind: "memory" })
    expect(LedgerUrl.parseSync("file:ledger.jsonl")).toEqual({ kind: "file", path: "ledger.jsonl" })
    expect(LedgerUrl.parseSync("file:./data/l.jsonl")).toEqual({ kind: "file", path: "./data/l.jsonl" })
    expect(LedgerUrl.parseSync("file:/var/lib/egl/l.jsonl")).toEqual({ kind: "file", path: "/var/lib/egl/l.jsonl" })
    expect(LedgerUrl.parseSync("file:///var/lib/egl/l.jsonl")).toEqual({ kind: "file", path: "/var/lib/egl/l.jsonl" })
    expect(LedgerUrl.parseSync("sqlite:.data/ledger.db")).toEqual({ kind: "sqlite", path: ".data/ledger.db" })
    expect(LedgerUrl.parseSync("sqlite:///tmp/a b.db")).toEqual({ kind: "sqlite", path: "/tmp/a b.db" })
    expect(LedgerUrl.parseSync("postgres://egl@localhost:5432/egl")).toEqual({
      kind: "postgres",
      url: "postgres://egl@localhost:5432/egl"
    })
    expect(LedgerUrl.parseSync("postgresql://localhost/egl").kind).toBe("postgres")
  })

  it("rejects anything else with a typed error that names the accepted forms", async () => {
    for (const input of ["", "Memory", "ledger.db", "file:", "sqlite:", "sqlite://host/x.db", "redis://localhost"]) {
      const error = await Effect.runPromise(Effect.flip(LedgerUrl.parse(input)))
      expect(error._tag, input).toBe("LedgerUrlInvalid")
      expect(error.input).toBe(input)
    }
    const error = LedgerUrl.parseOrError("mysql://localhost/egl")
    expect(error).toBeInstanceOf(LedgerUrl.LedgerUrlInvalid)
    expect((error as LedgerUrl.LedgerUrlInvalid).message).toBe(
      `invalid ledger URL "mysql://localhost/egl": expected ${LedgerUrl.FORMS}`
    )
    expect(() => LedgerUrl.parseSync("postgres://[bad")).toThrow(LedgerUrl.LedgerUrlInvalid)
  })

  it("never shows a password", () => {
    const url = LedgerUrl.parseSync("postgres://egl:s3cr@t@db.internal:5432/egl")
    expect(LedgerUrl.describe(url)).toBe("postgres://egl:***@db.internal:5432/egl")
    const error = LedgerUrl.parseOrError("postgress://egl:s3cret@db/egl") as LedgerUrl.LedgerUrlInvalid
    expect(error.message).not.toContain("s3cret")
    expect(error.input).toBe("postgress://egl:***@db/egl")
    expect(LedgerUrl.describe({ kind: "sqlite", path: "/x.db" })).toBe("sqlite:/x.db")
  })
})

describe("LedgerUrl.describe", () => {
  it("never shows a password, in the authority or in the query", () => {
    const shown = LedgerUrl.describe(
      LedgerUrl.parseSync("postgres://egl:s3cret@db.internal:5432/egl?schema=prod&password=other&sslpassword=x")
    )
    expect(shown).not.toMatch(/s3cret|other|sslpassword=x/)
    expect(shown).toContain("egl:***@db.internal")
    expect(shown).toContain("schema=prod")
  })
})
