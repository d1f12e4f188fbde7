/**
 * An AI agent's tool calls, each governed by EGL: `admit` decides (and records the decision in the ledger), `execute`
 * uses the single-use grant, runs the task in its tier's pool or serves the verified cached output, and records the
 * outcome. Every row of the {@link Summary} is what the pipeline answered; nothing is inferred on this side.
 *
 * No tool here touches the disk, the network, a model provider or a cluster: each task returns a canned answer, as an
 * example should. The governance around them is real.
 */
import { createGovernance, type GovernanceConfig, type GovernanceInstance } from "@egl/core"
import type { Envelope, Ledger, Sealer } from "@egl/core"
import { policy } from "./policy.ts"
import { registry } from "./registry.ts"

/** Options of {@link runAgent}. */
export interface AgentOptions {
  /** Ledger backend (default: memory). */
  readonly ledger?: GovernanceConfig["ledger"]
  /** Signing key; a ledger that outlives the process needs the same key on every run for its checkpoints to verify. */
  readonly keys?: Sealer.SealerKeys
}

/** What became of one tool call. */
export type Outcome = "executed" | "served from cache" | "denied" | "refused"

/** One tool call as the pipeline decided it. */
export interface Row {
  /** Stable id of the step, e.g. `network.no-reason`. */
  readonly id: string
  /** What the agent tried. */
  readonly description: string
  /** The execution class the classifier assigned (absent only when the request never reached a decision). */
  readonly executionClass: string | undefined
  /** `tool.action`. */
  readonly toolAction: string
  /** The user at the outer end of the delegation chain. */
  readonly onBehalfOf: string
  readonly outcome: Outcome
  /** The decision's reason codes, or the refusal's code when `execute` refused the grant. */
  readonly reasonCodes: ReadonlyArray<string>
  /** The rules the decision names. */
  readonly matchedRules: ReadonlyArray<string>
  /** The decision's rationale, in words. */
  readonly rationale: string | undefined
  /** Granted tier (absent on a denial). */
  readonly tier: number | undefined
  /** True when the output came from the deterministic cache, not from running the task. */
  readonly cached: boolean
  /** The escalation reason the request stated, as recorded in the envelope. */
  readonly statedReason: string | undefined
  /** The escalation the guard approved (reason, from → to tier, approving rule), when the grant is above baseline. */
  readonly approvedEscalation: Envelope.ApprovedEscalation | undefined
  /** The task's (or the cache's) output. */
  readonly output?: unknown
  readonly envelopeId: string | undefined
}

/** Everything the run decided. */
export interface Summary {
  readonly rows: ReadonlyArray<Row>
  /** How many times each tool's task actually ran, by `tool.action`. */
  readonly taskRuns: Readonly<Record<string, number>>
  /** `egl.verifyLedger()` after the run. */
  readonly ledger: Ledger.VerifyReport
}

interface User {
  readonly id: string
  readonly roles: ReadonlyArray<string>
}

/** The people the agent works for. */
export const users = {
  alice: { id: "alice", roles: ["analyst"] },
  bob: { id: "bob", roles: ["sre-admin"] }
} as const satisfies Record<string, User>

/**
 * The agent's principal when it acts for `user`. Policy rules match on roles, not on the delegation chain, so the
 * identity layer hands the agent the roles of the user it acts for (it may do on their behalf what they may do); the
 * chain itself is recorded in every envelope, so the ledger shows who the agent acted for.
 */
const agentFor = (user: User) => ({
  id: "research-agent",
  kind: "agent" as const,
  roles: [...user.roles],
  delegation: [{ id: user.id, kind: "user" as const }]
})

// The agent works on production for one project; policy may key on both.
const scope = { environment: "prod" as const, project: "analytics" }

interface Call {
  readonly id: string
  readonly description: string
  readonly user: User
  readonly tool: string
  readonly action: string
  readonly input: unknown
  readonly resources?: Record<string, number>
  readonly escalation?: { readonly reason: string; readonly justification: string }
  readonly task: (envelope: Envelope.ExecutionEnvelope) => Promise<unknown>
}

/**
 * Runs the agent's tool calls through one governance instance and returns what was decided: the transform twice (the
 * second from the cache), a workspace read, a remote read and an HTTP call with and without a stated reason, a model
 * call, and a cluster mutation without a reason, for a non-admin, for an admin, then replayed.
 */
export const runAgent = async (options: AgentOptions = {}): Promise<Summary> => {
  const egl = await createGovernance({
    registry,
    policy,
    ledger: options.ledger ?? "memory",
    ...(options.keys !== undefined ? { keys: options.keys } : {})
  })
  try {
    return await run(egl)
  } finally {
    await egl.close()
  }
}

const run = async (egl: GovernanceInstance): Promise<Summary> => {
  const rows: Array<Row> = []
  const taskRuns: Record<string, number> = {}

  /** Admits one call and, when admitted, executes it; returns the admission so that a caller can replay it. */
  const call = async (c: Call) => {
    const toolAction = `${c.tool}.${c.action}`
    taskRuns[toolAction] ??= 0
    const result = await egl.admit({
      tool: c.tool,
      action: c.action,
      subject: agentFor(c.user),
      scope,
      input: c.input,
      requested: {
        ...(c.resources !== undefined ? { resources: c.resources } : {}),
        ...(c.escalation !== undefined ? { escalation: c.escalation } : {})
      }
    })
    const base = {
      id: c.id,
      description: c.description,
      toolAction,
      // As recorded in the envelope: the ledger is the record of who the agent acted for.
      onBehalfOf: result.envelope?.subject.delegation?.[0]?.id ?? c.user.id,
      executionClass: result.envelope?.execution.class,
      matchedRules: result.envelope?.decision.matchedRules ?? [],
      rationale: result.envelope?.decision.rationale,
      statedReason: result.envelope?.requested.escalation?.reason,
      approvedEscalation: result.envelope?.granted?.escalation,
      tier: result.envelope?.granted?.tier,
      envelopeId: result.envelope?.id
    }
    if (!result.ok) {
      rows.push({ ...base, outcome: "denied", reasonCodes: result.reasonCodes, cached: false })
      return undefined
    }
    const executed = await egl.execute(result, async (envelope) => {
      taskRuns[toolAction]! += 1
      return c.task(envelope)
    })
    rows.push(
      executed.ok
        ? {
            ...base,
            outcome: executed.cached ? "served from cache" : "executed",
            reasonCodes: result.reasonCodes,
            cached: executed.cached,
            output: executed.output
          }
        : { ...base, outcome: "refused", reasonCodes: [codeOf(executed.error)], cached: false }
    )
    return { result, toolAction, base, task: c.task }
  }

  // 1. transform: pure, so the identical second call is replayed from the deterministic cache without running.
  const normalize = {
    user: users.alice,
    tool: "text",
    action: "normalize",
    input: { text: "  Quarterly   REVENUE   Report " },
    task: async (envelope: Envelope.ExecutionEnvelope) => ({
      text: "quarterly revenue report",
      normalizedBy: envelope.id
    })
  }
  await call({ ...normalize, id: "transform.first", description: "normalize a heading" })
  await call({ ...normalize, id: "transform.repeat", description: "the same call again" })

  // 2. file: a workspace read, tier 1 (the class floor).
  const readFile = { user: users.alice, tool: "fs", action: "read_file" }
  const report = { path: "reports/q3.md" }
  await call({
    ...readFile,
    id: "file.read",
    description: "read a workspace file",
    input: report,
    task: async () => ({ path: report.path, content: "# Q3\nRevenue grew 12%." })
  })

  // 2b. The same read from a remote source needs net.egress (derived from `source.url`): an escalation from tier 1 to
  // tier 2, which the guard refuses without a reason and the policy approves with NETWORK_REQUIRED.
  const remote = { path: "reports/q3.md", source: { url: "https://intranet.example/reports/q3.md" } }
  const remoteTask = async () => ({ path: remote.path, content: "# Q3 (remote)\nRevenue grew 12%." })
  await call({
    ...readFile,
    id: "file.remote.no-reason",
    description: "read a remote file, no reason",
    input: remote,
    task: remoteTask
  })
  await call({
    ...readFile,
    id: "file.remote",
    description: "read a remote file, NETWORK_REQUIRED",
    input: remote,
    escalation: { reason: "NETWORK_REQUIRED", justification: "the report lives on the intranet" },
    task: remoteTask
  })

  // 3. network: baseline 1 in this deployment, so every fetch escalates to tier 2 for net.egress: refused without a
  // reason, approved with NETWORK_REQUIRED.
  const fetchRates = {
    user: users.alice,
    tool: "http",
    action: "fetch",
    input: { url: "https://api.example.com/fx?base=EUR" },
    // An example: no request leaves the process, the task returns a canned response.
    task: async () => ({ status: 200, body: { base: "EUR", rates: { USD: 1.08 } } })
  }
  await call({ ...fetchRates, id: "network.no-reason", description: "fetch exchange rates, no reason" })
  await call({
    ...fetchRates,
    id: "network",
    description: "fetch exchange rates, NETWORK_REQUIRED",
    escalation: { reason: "NETWORK_REQUIRED", justification: "convert Q3 revenue to USD" }
  })

  // 4. ai: tier 2, token budget capped by the policy.
  await call({
    id: "ai",
    description: "summarize the report",
    user: users.alice,
    tool: "llm",
    action: "complete",
    input: { model: "example-small", prompt: "Summarize: Revenue grew 12%." },
    resources: { maxTokens: 512 },
    // An example: no model provider is called.
    task: async () => ({ completion: "Q3 revenue grew 12% (about 1.08 USD per EUR).", tokens: 14 })
  })

  // 5. privileged: baseline 2 in this deployment, so every scale escalates to tier 3; the guard demands
  // PRIVILEGED_MUTATION and only a rule for an agent acting for an sre-admin approves it. The grant is single use.
  const scale = {
    tool: "k8s",
    action: "scale",
    input: { namespace: "analytics", deployment: "report-renderer", replicas: 4 },
    resources: { replicas: 4 },
    // An example: no cluster is touched.
    task: async (envelope: Envelope.ExecutionEnvelope) => ({
      deployment: "report-renderer",
      replicas: envelope.granted?.resources.replicas
    })
  }
  const mutation = { reason: "PRIVILEGED_MUTATION", justification: "report rendering backlog" }
  await call({ ...scale, id: "privileged.no-reason", description: "scale for an admin, no reason", user: users.bob })
  await call({
    ...scale,
    id: "privileged.non-admin",
    description: "scale for an analyst, PRIVILEGED_MUTATION",
    user: users.alice,
    escalation: mutation
  })
  const scaled = await call({
    ...scale,
    id: "privileged",
    description: "scale for an admin, PRIVILEGED_MUTATION",
    user: users.bob,
    escalation: mutation
  })
  if (scaled !== undefined) {
    // The same admission again: its grant was used by the first execute.
    const replay = await egl.execute(scaled.result, async (envelope) => {
      taskRuns[scaled.toolAction]! += 1
      return scaled.task(envelope)
    })
    rows.push({
      ...scaled.base,
      id: "privileged.replay",
      description: "execute the same admission again",
      outcome: replay.ok ? "executed" : "refused",
      reasonCodes: replay.ok ? scaled.result.reasonCodes : [codeOf(replay.error)],
      cached: replay.ok && replay.cached
    })
  }

  return { rows, taskRuns, ledger: await egl.verifyLedger() }
}

/** The machine-readable code of a refusal (`GRANT_REUSED`, `GRANT_EXPIRED`, …), or its tag when it has none. */
const codeOf = (error: { readonly _tag: string }): string =>
  "code" in error && typeof error.code === "string" ? error.code : error._tag
