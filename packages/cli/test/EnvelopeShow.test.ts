import { Envelope } from "@egl/core"
import { beforeAll, describe, expect, it } from "vitest"
import { build, copy, egl, eglJson, tamper, type Built } from "./support/ledgers.ts"

let sqlite: Built
let file: Built
beforeAll(async () => {
  ;[sqlite, file] = await Promise.all([build("sqlite"), build("file")])
}, 60_000)

describe("egl envelope show", () => {
  it("shows an executed envelope as stored, its seal and its history (exit 0)", async () => {
    const { code, json } = await eglJson("envelope", "show", sqlite.executed, "--ledger", `sqlite:${sqlite.path}`)
    expect(code).toBe(0)
    expect(json).toMatchObject({ ok: true, ledger: `sqlite:${sqlite.path}`, seal: { verified: true } })
    const envelope = json["envelope"] as Envelope.ExecutionEnvelope
    expect(envelope.id).toBe(sqlite.executed)
    expect(envelope.decision).toMatchObject({ outcome: "admitted" })
    expect(envelope.granted).toMatchObject({ tier: 3 })
    expect(Envelope.verifySeal(envelope)).toBe(true)
    const history = json["history"] as ReadonlyArray<Record<string, any>>
    expect(history.map((h) => h.kind)).toEqual(["decision", "escalation", "execution", "execution"])
    expect(history[0]).toMatchObject({ index: json["position"].index, hash: json["position"].hash })
    expect(history[0]!["payload"]).toBeUndefined()
    expect(history.slice(2).map((h) => h["payload"].phase)).toEqual(["dispatched", "completed"])
    expect(history[0]!["digest"]).toBe(envelope.decision.snapshotId)

    const human = await egl("envelope", "show", sqlite.executed, "--ledger", `sqlite:${sqlite.path}`)
    expect(human.code).toBe(0)
    expect(human.out).toContain(`envelope ${sqlite.executed} in sqlite:${sqlite.path}`)
    expect(human.out).toMatch(/decision\s+admitted \(POLICY_ALLOW, ESCALATION_APPROVED\)/)
    expect(human.out).toMatch(/\(seal verifies\)/)
    expect(human.out).toMatch(/execution\s+\S+\s+phase=completed outputDigest=[0-9a-f]{64}/)
  })

  it("shows a denied envelope from a JSONL ledger", async () => {
    const { code, json } = await eglJson("envelope", "show", file.denied, "--ledger", `file:${file.path}`)
    expect(code).toBe(0)
    expect(json["envelope"]).toMatchObject({
      id: file.denied,
      decision: { outcome: "denied", reasonCodes: ["POLICY_DENY"] }
    })
    expect(json["envelope"].granted).toBeUndefined()
  })

  it("answers an unknown id with exit 4", async () => {
    const human = await egl("envelope", "show", "no-such-envelope", "--ledger", `sqlite:${sqlite.path}`)
    expect(human.code).toBe(4)
    expect(human.out).toBe("")
    expect(human.err).toBe(`egl envelope show: no envelope no-such-envelope in sqlite:${sqlite.path}\n`)
    const json = await eglJson("envelope", "show", "no-such-envelope", "--ledger", `file:${file.path}`)
    expect(json).toEqual({
      code: 4,
      json: { ok: false, error: { code: "not-found", message: `no envelope no-such-envelope in file:${file.path}` } }
    })
  })

  it("shows an envelope whose stored record was altered as not matching its seal (exit 1)", async () => {
    const path = copy(sqlite)
    tamper(path, (db) =>
      db
        .prepare(`UPDATE records SET body = replace(body, '"gpus":8', '"gpus":16') WHERE kind = 'decision' AND ref = ?`)
        .run(sqlite.executed)
    )
    const { code, json } = await eglJson("envelope", "show", sqlite.executed, "--ledger", `sqlite:${path}`)
    expect(code).toBe(1)
    expect(json).toMatchObject({ ok: false, seal: { verified: false } })
    expect(json["envelope"].granted.resources.gpus).toBe(16)
    const human = await egl("envelope", "show", sqlite.executed, "--ledger", `sqlite:${path}`)
    expect(human.out).toContain("SEAL DOES NOT VERIFY")
  })

  it("needs --ledger and opens nothing that is not there", async () => {
    const missing = await egl("envelope", "show", sqlite.executed)
    expect(missing.code).toBe(2)
    expect(missing.err).toMatch(/^egl envelope show: missing --ledger <ledger-url>\nUsage: egl envelope show <id>/)
    const noId = await egl("envelope", "show", "--ledger", `sqlite:${sqlite.path}`)
    expect(noId.code).toBe(2)
    expect(noId.err).toMatch(/missing <id>/)
    const postgres = await egl("envelope", "show", sqlite.executed, "--ledger", "postgres://127.0.0.1:1/egl")
    expect(postgres.code).toBe(3)
    expect(postgres.err).toMatch(
      /cannot open the ledger: postgres:\/\/127\.0\.0\.1:1\/egl\?schema=public: .*ECONNREFUSED/
    )
  })
})
