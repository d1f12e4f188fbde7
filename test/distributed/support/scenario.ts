/**
 * The registry and policy shared by the API process and the worker processes of the distributed tests.
 */
import type { Classifier, PolicyEngine } from "@egl/core"

/** One action per tier. */
export const registry: Classifier.RegistryInput = {
  tools: [
    {
      tool: "jobs",
      version: "1.0.0",
      stage: "active",
      actions: {
        transform: { class: "transform" },
        file: { class: "file" },
        network: { class: "network" },
        privileged: { class: "privileged" }
      }
    }
  ]
}

/** Agents may run everything up to tier 3. */
export const policy: PolicyEngine.PolicyInput = {
  version: "distributed-1",
  rules: [{ id: "agents", effect: "allow", match: { principalKinds: ["agent"] }, tier: 3 }]
}

/** An admission request for `jobs.<action>`. */
export const request = (action: string, input: unknown) => ({
  tool: "jobs",
  action,
  subject: { id: "planner", kind: "agent" as const, roles: [] },
  scope: { environment: "dev" as const },
  input
})
