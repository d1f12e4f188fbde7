import { Writable } from "node:stream"
import { describe, expect, it } from "vitest"
import { pino } from "pino"
import { createGovernance, DecisionLog } from "@egl/core"
import { config } from "./fixtures/runtime.ts"
import { deploy } from "./fixtures/scenario.ts"

const capture = () => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line))
      done()
    }
  })
  return { lines, stream }
}

describe("decision logs", () => {
  it("log one structured line per decision, keyed by envelope id", async () => {
    const { lines, stream } = capture()
    const egl = await createGovernance(config({ logger: pino(DecisionLog.loggerOptions(), stream) }))
    try {
      const ok = await egl.admit(deploy("alice", "dev", { gpus: 1, replicas: 1 }))
      const denied = await egl.admit(deploy("carol", "dev", { gpus: 1 }))
      expect(lines.map((l) => [l.envelopeId, l.outcome, l.reasonCodes])).toEqual([
        [ok.envelope?.id, "admitted", ["POLICY_ALLOW"]],
        [denied.envelope?.id, "denied", ["POLICY_DENY"]]
      ])
    } finally {
      await egl.close()
    }
  })

  it("redact secrets wherever they appear", () => {
    const { lines, stream } = capture()
    const logger = pino(DecisionLog.loggerOptions(), stream)
    logger.info(
      {
        headers: { authorization: "Bearer egl-demo-alice" },
        apiKey: "k1",
        req: { token: "t1", password: "p" },
        keys: { privateKeyPem: "-----BEGIN" }
      },
      "x"
    )
    const text = JSON.stringify(lines)
    for (const secret of ["egl-demo-alice", "k1", "t1", '"p"', "BEGIN"]) expect(text).not.toContain(secret)
    expect(text).toContain("[redacted]")
  })
})
