/**
 * The reference scenario of SPEC §11 end to end over real HTTP: the serving API started as `pnpm start` starts it
 * (SQLite ledger in its data folder, signing key beside it), every row of the demo policy with its status, problem body
 * and reason codes, one decision record per admission attempt, execution records for admitted requests, a verifying
 * ledger, and a tampered SQLite file caught by `egl ledger verify`.
 */
import { Envelope, type Ledger } from "@egl/core"
import { main as egl } from "@egl/cli"
import { Config, start, type Running } from "@egl/serving-api"
import Database from "better-sqlite3"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const dir = mkdtempSync(join(tmpdir(), "egl-serving-api-"))
const ledgerPath = join(dir, "ledger.db")
let app: Running

beforeAll(async () => {
  app = await start(Config.fromEnv({ PORT: "0", EGL_DATA_DIR: dir, LOG_LEVEL: "silent" }))
})
afterAll(async () => {
  await app?.stop()
  rmSync(dir, { recursive: true, force: true })
})

const model = { id: "llama-3-8b", version: "2026.11.1" }
const deploy = (key: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${app.url}/serving/deploy_model`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(key !== undefined ? { authorization: `Bearer ${key}` } : {}),
      ...headers
    },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })

const escalation = { reason: "PRIVILEGED_MUTATION", justification: "release 2026.11" }
const body = (environment: string, gpus: number, extra: Record<string, unknown> = {}) => ({
  model,
  resources: { gpus, memoryGiB: 40, replicas: 2 },
  environment,
  ...extra
})

interface Row {
  readonly name: string
  readonly key: string
  readonly body: unknown
  readonly status: 201 | 403
  readonly codes: ReadonlyArray<string>
  readonly tier?: number
}

const rows: ReadonlyArray<Row> = [
  { name: "viewer may not deploy", key: "egl-demo-carol", body: body("dev", 1), status: 403, codes: ["POLICY_DENY"] },
  {
    name: "ml-engineer in dev, gpus ≤ 4",
    key: "egl-demo-alice",
    body: body("dev", 4),
    status: 201,
    codes: ["POLICY_ALLOW"],
    tier: 2
  },
  {
    name: "ml-engineer in staging",
    key: "egl-demo-alice",
    body: body("staging", 2),
    status: 201,
    codes: ["POLICY_ALLOW"],
    tier: 2
  },
  {
    name: "ml-engineer, more than 4 GPUs",
    key: "egl-demo-alice",
    body: body("dev", 5),
    status: 403,
    codes: ["RESOURCE_LIMIT_EXCEEDED"]
  },
  {
    name: "replicas above 4 are clamped",
    key: "egl-demo-alice",
    body: { model, resources: { gpus: 2, memoryGiB: 40, replicas: 6 }, environment: "dev" },
    status: 201,
    codes: ["POLICY_ALLOW", "RESOURCE_CLAMPED"],
    tier: 2
  },
  {
    name: "prod without escalation",
    key: "egl-demo-alice",
    body: body("prod", 2),
    status: 403,
    codes: ["ESCALATION_REASON_MISSING"]
  },
  {
    name: "prod without escalation, even for an admin",
    key: "egl-demo-bob",
    body: body("prod", 2),
    status: 403,
    codes: ["ESCALATION_REASON_MISSING"]
  },
  {
    name: "ml-engineer asks PRIVILEGED_MUTATION",
    key: "egl-demo-alice",
    body: body("prod", 2, { escalation }),
    status: 403,
    codes: ["ESCALATION_NOT_APPROVED"]
  },
  {
    name: "ml-admin escalates to tier 3",
    key: "egl-demo-bob",
    body: body("prod", 16, { escalation }),
    status: 201,
    codes: ["POLICY_ALLOW", "ESCALATION_APPROVED"],
    tier: 3
  },
  {
    name: "ml-admin, more than 16 GPUs",
    key: "egl-demo-bob",
    body: body("prod", 17, { escalation }),
    status: 403,
    codes: ["RESOURCE_LIMIT_EXCEEDED"]
  },
  {
    name: "restricted data outside prod",
    key: "egl-demo-alice",
    body: body("dev", 1, { dataClassification: "restricted" }),
    status: 403,
    codes: ["POLICY_DENY"]
  },
  {
    name: "restricted data outside prod, admin in staging",
    key: "egl-demo-bob",
    body: body("staging", 1, { dataClassification: "restricted" }),
    status: 403,
    codes: ["POLICY_DENY"]
  }
]

const decisions = async (): Promise<ReadonlyArray<Ledger.LedgerRecord>> => {
  const { size } = await app.governance.head()
  return (await app.governance.records(0, size)).filter(
    (r): r is Ledger.LedgerRecord => !("_corrupt" in r) && r.kind === "decision"
  )
}

describe("POST /serving/deploy_model, the demo policy row by row", () => {
  const admitted: Array<Envelope.ExecutionEnvelope> = []
  const denied: Array<string> = []

  for (const row of rows) {
    it(`${row.name}: ${row.status} ${row.codes.join(", ")}`, async () => {
      const before = (await decisions()).length
      const res = await deploy(row.key, row.body)
      expect(res.status).toBe(row.status)
      const json = (await res.json()) as Record<string, unknown>
      if (row.status === 201) {
        expect(res.headers.get("content-type")).toMatch(/^application\/json/)
        const envelope = json["envelope"] as Envelope.ExecutionEnvelope
        expect(envelope.state).toBe("admitted")
        expect(envelope.decision.outcome).toBe("admitted")
        expect([...envelope.decision.reasonCodes].sort()).toEqual([...row.codes].sort())
        expect(envelope.granted?.tier).toBe(row.tier)
        expect(envelope.granted?.pool).toBe(`pool-t${row.tier}`)
        expect(Date.parse(envelope.granted!.expiresAt)).toBeGreaterThan(Date.now())
        expect(envelope.decision.policySnapshotId).toMatch(/^[0-9a-f]{64}$/)
        expect(Envelope.verifySeal(envelope)).toBe(true)
        expect(envelope.ledger).toEqual({ index: expect.any(Number), hash: expect.stringMatching(/^[0-9a-f]{64}$/) })
        admitted.push(envelope)
      } else {
        expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/)
        expect(json).toMatchObject({ status: 403, title: expect.any(String), detail: expect.any(String) })
        expect(json["type"]).toBe(`urn:egl:problem:${row.codes[0]!.toLowerCase().replaceAll("_", "-")}`)
        expect(json["reasonCodes"]).toEqual(row.codes)
        expect(json["envelopeId"]).toEqual(expect.any(String))
        denied.push(json["envelopeId"] as string)
      }
      // One decision record per admission attempt, in the ledger before the answer.
      expect((await decisions()).length).toBe(before + 1)
    })
  }

  it("the clamp keeps what was requested and grants the cap", () => {
    const clamped = admitted.find((e) => e.decision.reasonCodes.includes("RESOURCE_CLAMPED"))!
    expect(clamped.requested.resources["replicas"]).toBe(6)
    expect(clamped.granted?.resources["replicas"]).toBe(4)
  })

  it("the tier-3 grant is single-use and expires", async () => {
    const privileged = admitted.find((e) => e.granted?.tier === 3)!
    expect(privileged.granted?.escalation).toMatchObject({ reason: "PRIVILEGED_MUTATION", fromTier: 2, toTier: 3 })
    const ttl = Date.parse(privileged.granted!.expiresAt) - Date.parse(privileged.decision.decidedAt)
    expect(ttl).toBe(300_000)
    // The HTTP request used the grant: presenting the envelope again is refused and recorded.
    const replay = await app.governance.dispatch(privileged)
    expect(replay.ok).toBe(false)
    expect(!replay.ok && replay.error._tag === "GrantRejected" && replay.error.code).toBe("GRANT_REUSED")
  })

  it("GET /envelopes/:id serves the sealed envelope of a denial, as stored", async () => {
    const res = await fetch(`${app.url}/envelopes/${denied[0]}`)
    expect(res.status).toBe(200)
    const { envelope, sealVerified } = (await res.json()) as {
      envelope: Envelope.ExecutionEnvelope
      sealVerified: boolean
    }
    expect(envelope.id).toBe(denied[0])
    expect(envelope.state).toBe("denied")
    expect(envelope.decision.reasonCodes).toEqual(["POLICY_DENY"])
    expect(envelope.subject.id).toBe("carol")
    expect(sealVerified).toBe(true)
    const missing = await fetch(`${app.url}/envelopes/no-such-envelope`)
    expect(missing.status).toBe(404)
    expect(missing.headers.get("content-type")).toMatch(/^application\/problem\+json/)
  })

  it("every admitted request has its dispatched and completed execution records", async () => {
    const { size } = await app.governance.head()
    const records = (await app.governance.records(0, size)) as ReadonlyArray<Ledger.LedgerRecord>
    for (const envelope of admitted) {
      const phases = records
        .filter((r) => r.kind === "execution" && r.ref === envelope.id)
        .map((r) => (JSON.parse(r.body) as { phase: string; statusCode?: number }).phase)
      expect(phases).toEqual(["dispatched", "completed"])
    }
    const completed = records
      .filter((r) => r.kind === "execution" && r.ref === admitted[0]!.id)
      .map((r) => JSON.parse(r.body) as { statusCode?: number; outputDigest?: string })
      .at(-1)
    expect(completed).toMatchObject({ statusCode: 201, outputDigest: expect.stringMatching(/^[0-9a-f]{64}$/) })
  })
})

describe("refusals before admission", () => {
  const problem = async (res: Response, status: number, code: string) => {
    expect(res.status).toBe(status)
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    const json = (await res.json()) as { status: number; reasonCodes: ReadonlyArray<string>; type: string }
    expect(json.status).toBe(status)
    expect(json.reasonCodes).toEqual([code])
    return json
  }

  it("401 without a key, with an unknown key, or with only a client-set identity header", async () => {
    const before = (await decisions()).length
    await problem(await deploy(undefined, body("dev", 1)), 401, "UNAUTHENTICATED")
    await problem(await deploy("egl-demo-mallory", body("dev", 1)), 401, "UNAUTHENTICATED")
    await problem(
      await deploy(undefined, body("dev", 1), { "x-user": "bob", "x-forwarded-user": "bob" }),
      401,
      "UNAUTHENTICATED"
    )
    expect((await decisions()).length).toBe(before)
  })

  it("400 for malformed JSON and for an invalid body, with the issues by path", async () => {
    await problem(await deploy("egl-demo-alice", '{"model": '), 400, "INVALID_REQUEST")
    const invalid = await problem(
      await deploy("egl-demo-alice", {
        model,
        resources: { gpus: -1, memoryGiB: 40, replicas: 1 },
        environment: "moon"
      }),
      400,
      "INVALID_REQUEST"
    )
    expect(
      (invalid as unknown as { issues: ReadonlyArray<{ path: string }> }).issues.map((i) => i.path).sort()
    ).toEqual(["environment", "resources.gpus"])
  })

  it("413 for a body over the limit", async () => {
    await problem(
      await deploy("egl-demo-alice", { ...body("dev", 1), padding: "x".repeat(70 * 1024) }),
      413,
      "REQUEST_TOO_LARGE"
    )
  })
})

describe("the ledger", () => {
  it("GET /ledger/verify reports an intact chain", async () => {
    const res = await fetch(`${app.url}/ledger/verify`)
    expect(res.status).toBe(200)
    const report = (await res.json()) as { ok: boolean; length: number }
    expect(report.ok).toBe(true)
    expect(report.length).toBe((await app.governance.head()).size)
  })

  it("serves the dashboard, metrics and health", async () => {
    const dashboard = await fetch(`${app.url}/dashboard`)
    expect(dashboard.headers.get("content-type")).toMatch(/^text\/html/)
    const html = await dashboard.text()
    expect(html).toContain("POLICY_DENY")
    expect(html).toContain("RESOURCE_CLAMPED")
    const metrics = await (await fetch(`${app.url}/metrics`)).text()
    expect(metrics).toMatch(/egl_admissions_total\{outcome="denied",status="403"\} 8/)
    expect(metrics).toMatch(/egl_admissions_total\{outcome="admitted",status="201"\} 4/)
    expect(metrics).toMatch(/egl_ledger_records \d+/)
    expect(await (await fetch(`${app.url}/healthz`)).json()).toMatchObject({ ok: true })
  })

  it("egl ledger verify passes on the stopped app's SQLite file, and finds a tampered row", async () => {
    await app.stop()
    const publicKey = join(dir, "signing-key.pub.pem")
    const out: Array<string> = []
    const io = { stdout: (s: string) => void out.push(s), stderr: (s: string) => void out.push(s) }
    expect(await egl(["ledger", "verify", `sqlite:${ledgerPath}`, "--public-key", publicKey], io)).toBe(0)

    const db = new Database(ledgerPath)
    db.prepare("UPDATE records SET body = replace(body, 'carol', 'alice') WHERE idx = 1").run()
    db.close()
    out.length = 0
    expect(await egl(["ledger", "verify", `sqlite:${ledgerPath}`, "--public-key", publicKey, "--json"], io)).toBe(1)
    const report = JSON.parse(out.join("")) as { ok: boolean; firstBadIndex: number }
    expect(report).toMatchObject({ ok: false, firstBadIndex: 1 })
  })
})
