/**
 * The policy governing the agent's tool calls. Rules are data; allow rules are tried in order, so order is priority.
 *
 * "The agent must state why" is the capability guard's escalation contract, not a match condition: the registry lowers
 * the network and privileged floors one tier, so egress (`net.egress`, tier 2) and cluster mutation (`admin.mutate`,
 * `cluster.scale`, tier 3) lie above their actions' baselines. The guard then demands an escalation whose reason is
 * the catalog reason of the missing capability (`ESCALATION_REASON_MISSING` without one) and an allow rule matching
 * the caller that approves that reason (`escalation.approve`; `ESCALATION_NOT_APPROVED` when none does). The approved
 * escalation is recorded in the envelope's `granted.escalation`.
 */
import type { PolicyEngine } from "@egl/core"

/** The agent policy. */
export const policy: PolicyEngine.PolicyInput = {
  version: "agent-tools-2026-11-01",
  description: "What an agent may do on behalf of the user it acts for",
  rules: [
    {
      id: "agent-workspace",
      description: "Pure transforms and workspace reads: tier 1 at most, no escalation",
      effect: "allow",
      match: { principalKinds: ["agent"], classes: ["transform", "file"] },
      tier: 1
    },
    {
      id: "agent-egress-with-reason",
      description: "Egress (a remote file read or an HTTP call) only with a stated NETWORK_REQUIRED reason",
      effect: "allow",
      match: { principalKinds: ["agent"], classes: ["file", "network"] },
      // The ceiling an approved NETWORK_REQUIRED escalation lifts a file or network call to: one hop above baseline 1.
      tier: 2,
      escalation: { approve: ["NETWORK_REQUIRED"] },
      grant: { ttlSeconds: 60 }
    },
    {
      id: "agent-llm",
      description: "Model calls at tier 2, bounded in tokens",
      effect: "allow",
      match: { principalKinds: ["agent"], classes: ["ai"] },
      tier: 2,
      resources: { maxTokens: { max: 4096, onExceed: "deny" } }
    },
    {
      id: "agent-privileged-for-admins",
      description: "Cluster mutation only for an agent acting for an sre-admin, with PRIVILEGED_MUTATION stated",
      effect: "allow",
      match: { principalKinds: ["agent"], classes: ["privileged"], roles: ["sre-admin"] },
      // One hop above the privileged baseline (2). An agent acting for anyone else matches no rule that approves the
      // escalation: ESCALATION_NOT_APPROVED.
      tier: 3,
      escalation: { approve: ["PRIVILEGED_MUTATION"] },
      resources: { replicas: { max: 10, onExceed: "deny" } },
      grant: { ttlSeconds: 60 }
    }
  ]
}
