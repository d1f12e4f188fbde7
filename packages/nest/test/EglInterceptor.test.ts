/**
 * What the interceptor (and the guard's safety net) records: failed handlers, a ledger that fails while recording, the
 * status of `@HttpCode()`, a later guard's refusal, the deterministic cache's short-circuit, and controller-level
 * `@Governed()` with a handler-level override.
 */
import {
  Body,
  ConflictException,
  Controller,
  ForbiddenException,
  HttpCode,
  Injectable,
  Post,
  UseGuards,
  type CanActivate
} from "@nestjs/common"
import { EMPTY } from "rxjs"
import { afterEach, describe, expect, it } from "vitest"
import {
  createGovernance,
  Identity,
  type Classifier,
  type Envelope as CoreEnvelope,
  type GovernanceInstance,
  type PolicyEngine
} from "@egl/core"
import { EglModule, Envelope, Governed } from "@egl/nest"
import { ACTION, deployModelRoute } from "../../../apps/serving-api/src/DeployModel.ts"
import {
  appModule,
  breakableStorage,
  Calls,
  deployBody,
  demoGovernance,
  demoIdentity,
  ledgerOf,
  listen,
  phasesOf,
  post,
  type Running
} from "./fixtures/servingApp.ts"

const ledger = breakableStorage()

@Injectable()
class Refuse implements CanActivate {
  canActivate(): boolean {
    throw new ForbiddenException("a later guard says no")
  }
}

@Controller("lab")
class LabController {
  constructor(private readonly calls: Calls) {}

  @Post("conflict")
  @Governed(ACTION, deployModelRoute)
  conflict(): never {
    this.calls.count++
    throw new ConflictException("the model is already deployed")
  }

  @Post("crash")
  @Governed(ACTION, deployModelRoute)
  crash(): never {
    this.calls.count++
    throw new Error("the GPU driver crashed")
  }

  @Post("ledger-breaks")
  @Governed(ACTION, deployModelRoute)
  breakLedger(@Envelope() envelope: CoreEnvelope.ExecutionEnvelope) {
    this.calls.count++
    ledger.state.broken = true
    return { envelope }
  }

  @Post("ok")
  @HttpCode(200)
  @Governed(ACTION, deployModelRoute)
  ok(@Envelope() envelope: CoreEnvelope.ExecutionEnvelope) {
    this.calls.count++
    return { id: envelope.id }
  }

  @Post("empty")
  @Governed(ACTION, deployModelRoute)
  empty() {
    this.calls.count++
    return EMPTY
  }

  @Post("late-refusal")
  @UseGuards(Refuse)
  @Governed(ACTION, deployModelRoute)
  late() {
    this.calls.count++
    return {}
  }
}

let running: Running | undefined
let governance: GovernanceInstance | undefined
afterEach(async () => {
  await running?.close()
  await governance?.close()
  running = governance = undefined
})

const startLab = async () => {
  ledger.state.broken = false
  governance = await demoGovernance(ledger.storage)
  running = await listen(
    appModule(EglModule.forRoot({ governance, identity: demoIdentity() }), { controllers: [LabController] })
  )
  return { url: running.url, calls: running.calls, governance }
}

const body = deployBody("dev", { gpus: 1, replicas: 1 })

/** The envelope admitted last (its decision record is the ledger's last decision). */
const lastAdmitted = async (g: GovernanceInstance) => {
  const decisions = (await ledgerOf(g)).filter((r) => r.kind === "decision")
  return decisions[decisions.length - 1]!.ref
}

/** Waits for an execution phase that is recorded after the response (the guard's close safety net). */
const eventually = async <A>(probe: () => Promise<A | undefined>): Promise<A> => {
  for (let i = 0; i < 100; i++) {
    const value = await probe()
    if (value !== undefined) return value
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error("not recorded in time")
}

describe("EglInterceptor", () => {
  it("records a handler's HttpException as a failed execution with its status, and lets Nest answer it", async () => {
    const { url, calls, governance } = await startLab()
    const res = await post(url, "/lab/conflict", body, "alice")
    expect(res.status).toBe(409)
    expect(res.headers.get("content-type")).toMatch(/^application\/json/)
    expect(await res.json()).toMatchObject({ statusCode: 409, message: "the model is already deployed" })
    expect(calls.count).toBe(1)
    const phases = await phasesOf(governance, await lastAdmitted(governance))
    expect(phases).toMatchObject([
      { phase: "dispatched" },
      { phase: "failed", statusCode: 409, error: "the model is already deployed" }
    ])
  })

  it("records a handler that throws an Error as failed with 500", async () => {
    const { url, governance } = await startLab()
    const res = await post(url, "/lab/crash", body, "alice")
    expect(res.status).toBe(500)
    const phases = await phasesOf(governance, await lastAdmitted(governance))
    expect(phases).toMatchObject([
      { phase: "dispatched" },
      { phase: "failed", statusCode: 500, error: "the GPU driver crashed" }
    ])
  })

  it("answers 503 LEDGER_UNAVAILABLE instead of the handler's value when the outcome cannot be recorded", async () => {
    const { url, calls, governance } = await startLab()
    const res = await post(url, "/lab/ledger-breaks", body, "alice")
    expect(res.status).toBe(503)
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    const problem = await res.json()
    expect(problem).toMatchObject({ status: 503, reasonCodes: ["LEDGER_UNAVAILABLE"] })
    expect(problem).not.toHaveProperty("envelope")
    expect(calls.count).toBe(1)
    // Admitted and dispatched before the ledger broke; the completion never made it.
    const phases = await phasesOf(governance, await lastAdmitted(governance))
    expect(phases.map((p) => p["phase"])).toEqual(["dispatched"])
  })

  it("refuses with 503 and runs nothing when the ledger cannot record the admission", async () => {
    const { url, calls } = await startLab()
    ledger.state.broken = true
    const res = await post(url, "/lab/ok", body, "alice")
    expect(res.status).toBe(503)
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/)
    expect(await res.json()).toMatchObject({ status: 503, reasonCodes: ["LEDGER_UNAVAILABLE"] })
    expect(calls.count).toBe(0)
  })

  it("records the status of @HttpCode() as the outcome's", async () => {
    const { url, governance } = await startLab()
    const res = await post(url, "/lab/ok", body, "alice")
    expect(res.status).toBe(200)
    const { id } = (await res.json()) as { id: string }
    expect(await phasesOf(governance, id)).toMatchObject([
      { phase: "dispatched" },
      { phase: "completed", statusCode: 200 }
    ])
  })

  it("records the outcome of a handler whose Observable completes without a value", async () => {
    const { url, calls, governance } = await startLab()
    const res = await post(url, "/lab/empty", body, "alice")
    expect(res.status).toBe(201)
    expect(await res.text()).toBe("")
    expect(calls.count).toBe(1)
    const phases = await phasesOf(governance, await lastAdmitted(governance))
    expect(phases).toMatchObject([{ phase: "dispatched" }, { phase: "completed", statusCode: 201 }])
  })

  it("records an admitted request that a later guard refused as failed, once the response closed", async () => {
    const { url, calls, governance } = await startLab()
    const res = await post(url, "/lab/late-refusal", body, "alice")
    expect(res.status).toBe(403)
    expect(calls.count).toBe(0)
    const id = await lastAdmitted(governance)
    const phases = await eventually(async () => {
      const p = await phasesOf(governance, id)
      return p.length === 2 ? p : undefined
    })
    expect(phases).toMatchObject([{ phase: "dispatched" }, { phase: "failed", statusCode: 403 }])
  })
})

// A cacheable tool (class transform) with the default mapping: the body is `{ scope, input }`.
const textRegistry: Classifier.RegistryInput = {
  tools: [
    {
      tool: "text",
      version: "1.0.0",
      stage: "active",
      actions: { normalize: { class: "transform" }, count: { class: "transform" } }
    }
  ]
}
const textPolicy: PolicyEngine.PolicyInput = {
  version: "text-v1",
  rules: [{ id: "agents", effect: "allow", match: { principalKinds: ["agent"] }, tier: 0 }]
}
const agentKeys = { "agent-key": { id: "planner", kind: "agent" as const, roles: [] } }

interface TextBody {
  readonly input: { readonly text: string }
}

@Controller("text")
@Governed("text.normalize")
class TextController {
  constructor(private readonly calls: Calls) {}

  @Post("normalize")
  normalize(@Body() body: TextBody, @Envelope() envelope: CoreEnvelope.ExecutionEnvelope) {
    this.calls.count++
    return { normalized: body.input.text.trim().toLowerCase(), action: envelope.execution.action }
  }

  @Post("count")
  @Governed("text.count")
  count(@Body() body: TextBody, @Envelope() envelope: CoreEnvelope.ExecutionEnvelope) {
    this.calls.count++
    return { length: body.input.text.length, action: envelope.execution.action }
  }
}

const startText = async () => {
  governance = await createGovernance({ registry: textRegistry, policy: textPolicy })
  running = await listen(
    appModule(EglModule.forRoot({ governance, identity: Identity.fromBearerToken(agentKeys) }), {
      controllers: [TextController]
    })
  )
  return { url: running.url, calls: running.calls, governance }
}

const text = (url: string, path: string, input: unknown) =>
  post(url, path, { scope: { environment: "dev" }, input }, undefined, { authorization: "Bearer agent-key" })

describe("controller-level @Governed() and the deterministic cache", () => {
  it("serves a repeated transform from the cache without running the handler, and records it as cached", async () => {
    const { url, calls, governance } = await startText()
    const first = await text(url, "/text/normalize", { text: "  Hello World " })
    expect(first.status).toBe(201)
    const output = await first.json()
    expect(output).toEqual({ normalized: "hello world", action: "normalize" })
    const second = await text(url, "/text/normalize", { text: "  Hello World " })
    expect(second.status).toBe(201)
    expect(await second.json()).toEqual(output)
    expect(calls.count).toBe(1)
    const executions = (await ledgerOf(governance)).filter((r) => r.kind === "execution").map((r) => r.parsed)
    expect(executions).toMatchObject([
      { phase: "dispatched" },
      { phase: "completed", statusCode: 201 },
      { phase: "dispatched" },
      { phase: "completed", statusCode: 201, cached: true }
    ])
    expect(executions[3]!["outputDigest"]).toBe(executions[1]!["outputDigest"])
  })

  it("governs every handler of the controller; a handler's own @Governed() overrides it, admitted once", async () => {
    const { url, governance } = await startText()
    const res = await text(url, "/text/count", { text: "four" })
    expect(res.status).toBe(201)
    expect(await res.json()).toEqual({ length: 4, action: "count" })
    const records = await ledgerOf(governance)
    expect(records.filter((r) => r.kind === "decision")).toHaveLength(1)
    expect(records.filter((r) => r.kind === "execution").map((r) => r.parsed["phase"])).toEqual([
      "dispatched",
      "completed"
    ])
    const unauthenticated = await post(url, "/text/count", { scope: { environment: "dev" }, input: { text: "x" } })
    expect(unauthenticated.status).toBe(401)
  })
})
