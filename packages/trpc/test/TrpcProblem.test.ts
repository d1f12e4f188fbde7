/**
 * Problems in tRPC's idiom: codes by status, the problem carried in the error's cause, and the formatter's `data.egl`.
 */
import { describe, expect, it } from "vitest"
import { AdmissionRequest, Identity, Problem } from "@egl/core"
import { getHTTPStatusCodeFromError } from "@trpc/server/http"
import { TRPCError, type TRPCDefaultErrorShape } from "@trpc/server"
import { eglErrorFormatter, problemOf, ProblemError, TrpcProblem, withProblem } from "../src/index.ts"

const shape = (error: TRPCError): TRPCDefaultErrorShape => ({
  message: error.message,
  code: -32003,
  data: { code: error.code, httpStatus: getHTTPStatusCodeFromError(error), path: "deployModel" }
})

describe("TrpcProblem", () => {
  it("maps every status core answers to the tRPC code with the same HTTP status", () => {
    const problems = [
      Problem.invalidRequest(
        new AdmissionRequest.InvalidRequest({
          detail: "the request body is invalid",
          issues: [{ path: "resources.gpus", message: "Expected a value between 0 and 1024, got -1" }]
        })
      ),
      Problem.make(401, ["UNAUTHENTICATED"], "missing or unknown credentials"),
      Problem.make(403, ["POLICY_DENY"], "denied", { envelopeId: "e-1", ledgerIndex: 4 }),
      Problem.tooLarge(1024),
      Problem.make(503, ["LEDGER_UNAVAILABLE"], "the ledger cannot record; nothing was executed")
    ]
    for (const problem of problems) {
      const error = TrpcProblem.toTRPCError(problem)
      expect(getHTTPStatusCodeFromError(error)).toBe(problem.status)
      expect(error.message).toBe(problem.detail)
      const egl = eglErrorFormatter({ shape: shape(error), error }).data.egl
      expect(egl).toMatchObject({ status: problem.status, reasonCodes: problem.reasonCodes })
      expect(egl?.issues).toEqual(problem.issues)
    }
    expect(TrpcProblem.codeOf(400)).toBe("BAD_REQUEST")
    expect(TrpcProblem.codeOf(401)).toBe("UNAUTHORIZED")
    expect(TrpcProblem.codeOf(403)).toBe("FORBIDDEN")
    expect(TrpcProblem.codeOf(413)).toBe("PAYLOAD_TOO_LARGE")
    expect(TrpcProblem.codeOf(503)).toBe("SERVICE_UNAVAILABLE")
    expect(TrpcProblem.codeOf(502)).toBe("INTERNAL_SERVER_ERROR")
  })

  it("carries the problem, and core's typed error behind it, in the cause", () => {
    const refusal = new Identity.Unauthenticated({ detail: "missing or unknown credentials" })
    const problem = Problem.fromError(refusal)
    const error = TrpcProblem.toTRPCError(problem, refusal)
    expect(error.code).toBe("UNAUTHORIZED")
    expect(error.cause).toBeInstanceOf(ProblemError)
    expect((error.cause as ProblemError).cause).toBe(refusal)
    expect(problemOf(error)).toBe(problem)
    expect(problemOf(error.cause)).toBe(problem)
    expect(problemOf(new TRPCError({ code: "FORBIDDEN" }))).toBeUndefined()
    expect(problemOf(new Error("boom"))).toBeUndefined()
    expect(problemOf(undefined)).toBeUndefined()
  })

  it("formats data.egl for EGL refusals and null for every other error", () => {
    const denied = TrpcProblem.toTRPCError(
      Problem.make(403, ["RESOURCE_LIMIT_EXCEEDED"], "gpus 8 > 4", { envelopeId: "env-1", ledgerIndex: 7 })
    )
    const formatted = eglErrorFormatter({ shape: shape(denied), error: denied })
    expect(formatted).toEqual({
      message: "gpus 8 > 4",
      code: -32003,
      data: {
        code: "FORBIDDEN",
        httpStatus: 403,
        path: "deployModel",
        egl: {
          type: "urn:egl:problem:resource-limit-exceeded",
          status: 403,
          reasonCodes: ["RESOURCE_LIMIT_EXCEEDED"],
          envelopeId: "env-1",
          ledgerIndex: 7
        }
      }
    })
    const other = new TRPCError({ code: "NOT_FOUND", message: "no such model" })
    expect(withProblem(shape(other), other).data.egl).toBeNull()
    expect(withProblem({ data: { custom: 1 } }, denied).data).toMatchObject({ custom: 1, egl: { status: 403 } })
  })
})
