/**
 * Prometheus metrics of the reference app (`GET /metrics`), on a registry of its own (several apps in one process
 * do not share counters): admissions by outcome and status, reason codes, request latency, the ledger's length, and
 * each tier pool's load and breaker state, read when scraped.
 * @module
 */
import type { GovernanceInstance } from "@egl/core"
import { IsolationRouter } from "@egl/core"
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client"

/** The app's metrics. */
export interface Metrics {
  readonly registry: Registry
  /** Counts one admission attempt: its outcome (`admitted`, `denied`, `refused`), HTTP status and reason codes. */
  admission(outcome: "admitted" | "denied" | "refused", status: number, reasonCodes: ReadonlyArray<string>): void
  /** Observes one request's duration. */
  readonly requestDuration: Histogram<"route" | "status">
}

/** Builds the metrics of one app over its governance instance. */
export const make = (governance: GovernanceInstance): Metrics => {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const admissions = new Counter({
    name: "egl_admissions_total",
    help: "Admission attempts by outcome and HTTP status",
    labelNames: ["outcome", "status"] as const,
    registers: [registry]
  })
  const reasons = new Counter({
    name: "egl_reason_codes_total",
    help: "Reason codes of admission decisions and refusals",
    labelNames: ["code"] as const,
    registers: [registry]
  })
  const requestDuration = new Histogram({
    name: "egl_http_request_duration_seconds",
    help: "Duration of HTTP requests",
    labelNames: ["route", "status"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry]
  })
  new Gauge({
    name: "egl_ledger_records",
    help: "Records in the ledger",
    registers: [registry],
    async collect() {
      this.set((await governance.head()).size)
    }
  })
  const inFlight = new Gauge({
    name: "egl_pool_in_flight",
    help: "Executions running in each tier pool",
    labelNames: ["pool"] as const,
    registers: [registry]
  })
  const queued = new Gauge({
    name: "egl_pool_queued",
    help: "Executions waiting for a slot in each tier pool",
    labelNames: ["pool"] as const,
    registers: [registry]
  })
  new Gauge({
    name: "egl_pool_breaker_open",
    help: "1 while a tier pool's circuit breaker is open or half-open",
    labelNames: ["pool"] as const,
    registers: [registry],
    async collect() {
      const pools = await governance.runtime.runPromise(IsolationRouter.IsolationRouter.use((r) => r.status))
      for (const p of pools) {
        this.set({ pool: p.pool }, p.breaker === "closed" ? 0 : 1)
        inFlight.set({ pool: p.pool }, p.inFlight)
        queued.set({ pool: p.pool }, p.queued)
      }
    }
  })
  return {
    registry,
    requestDuration,
    admission(outcome, status, reasonCodes) {
      admissions.inc({ outcome, status: String(status) })
      for (const code of reasonCodes) reasons.inc({ code })
    }
  }
}
