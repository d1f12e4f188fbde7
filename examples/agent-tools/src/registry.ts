/**
 * The agent's toolbox: one tool per execution class of SPEC §4, and the capability catalog they draw on.
 *
 * Each action declares its class; the classifier derives the baseline tier from the class floor and the required
 * capabilities from the action and its input. The floors are seed 002 §2.1's "Default Tier Floor" (transform 0, file
 * 1, network 2, ai 2, privileged 3) except where this deployment's `classes` profile lowers them (network 1,
 * privileged 2, see below). Capabilities not listed here come from core's default catalog (`compute`, `fs.read`,
 * `net.egress`, `ai.inference`, `admin.mutate`, …).
 */
import type { Classifier } from "@egl/core"

/** Tools the agent may call, keyed as `tool.action` in policy and in the summary. */
export const registry: Classifier.RegistryInput = {
  // The agent runs sandboxed: its calls start at workspace-scoped IO, and every step up is an explicit, reason-bound
  // escalation. With the default floors an egress call would already sit at tier 2 and a cluster mutation at tier 3,
  // their own baselines, so the capability guard would have nothing to escalate and would never ask why. One tier
  // lower, `net.egress` (tier 2) and `admin.mutate`/`cluster.scale` (tier 3) lie above the baseline: the guard demands
  // the catalog reason of the missing capability (NETWORK_REQUIRED, PRIVILEGED_MUTATION), a policy rule must approve
  // it, and the approved hop is recorded in `granted.escalation`. One hop at a time (`directJump: false`) and never
  // cached (`cacheable: false`): both classes act on the world. `ai` keeps its default floor 2: a model call is the
  // agent's ordinary work, bounded by the policy's token cap rather than by an escalation.
  classes: {
    network: { floor: 1, cacheable: false, directJump: false },
    privileged: { floor: 2, cacheable: false, directJump: false }
  },
  capabilities: {
    // A deployment-specific capability: what scaling a workload needs. Tier 3, above the privileged baseline 2 of this
    // deployment, so a PRIVILEGED_MUTATION escalation unlocks it; it changes the world, so it is never cached.
    "cluster.scale": { tier: 3, reason: "PRIVILEGED_MUTATION", sideEffects: true }
  },
  tools: [
    {
      tool: "text",
      version: "1.2.0",
      stage: "active",
      description: "Pure text transforms",
      actions: {
        // Pure and side-effect free: the transform class is cache-eligible by default, so an identical call is replayed
        // from the deterministic cache instead of running again.
        normalize: { class: "transform", capabilities: ["compute"], description: "Collapse whitespace, lowercase" }
      }
    },
    {
      tool: "fs",
      version: "1.0.0",
      stage: "active",
      description: "Workspace files",
      actions: {
        read_file: {
          class: "file",
          capabilities: ["fs.read"],
          // A remote source needs egress, which lifts the read from tier 1 to tier 2: an escalation derived from the
          // input (a workspace path stays at tier 1), where `http.fetch` always needs it.
          descriptors: [{ path: "source.url", capability: "net.egress" }],
          description: "Read a workspace file (or a remote one, given source.url)"
        }
      }
    },
    {
      tool: "http",
      version: "1.0.0",
      stage: "active",
      description: "Outbound HTTP",
      // Baseline 1 (this deployment's network floor) under `net.egress` (tier 2): every fetch is an escalation.
      actions: { fetch: { class: "network", capabilities: ["net.egress"], description: "GET a URL" } }
    },
    {
      tool: "llm",
      version: "1.0.0",
      stage: "active",
      description: "Model provider",
      actions: { complete: { class: "ai", capabilities: ["ai.inference"], description: "Complete a prompt" } }
    },
    {
      tool: "k8s",
      version: "1.0.0",
      stage: "active",
      description: "Cluster administration",
      actions: {
        // Baseline 2 (this deployment's privileged floor), both capabilities tier 3 with reason PRIVILEGED_MUTATION:
        // every scale is an escalation that only a rule for admins approves.
        scale: {
          class: "privileged",
          capabilities: ["cluster.scale", "admin.mutate"],
          description: "Scale a deployment"
        }
      }
    }
  ]
}
