/**
 * The request of the adapter benchmark (`bench/adapters.ts`), shared by the load generator and the servers
 * (`bench/adapter-server.ts`): one fixed JSON body, the same headers for every server, and the trivial handler.
 *
 * The body is the reference route's (`POST /serving/deploy_model`, SPEC §11): alice (ml-engineer) deploys a model to
 * `dev` with 1 GPU, which the demo policy admits at tier 2. The action is class `ai`, never served from the deterministic
 * cache, so every governed request is a full admission, dispatch and completion (three ledger records).
 */

/** The adapters benchmarked. */
export const ADAPTERS = ["express", "nest", "trpc"] as const
/** @see ADAPTERS */
export type Adapter = (typeof ADAPTERS)[number]

/**
 * What a server runs: the handler alone, or behind EGL with the memory ledger (the adapter + admission pipeline) or the
 * SQLite ledger (`@egl/ledger-sqlite`, WAL, `synchronous = FULL`, group commit).
 */
export const VARIANTS = ["plain", "governed", "governed-sqlite"] as const
/** @see VARIANTS */
export type Variant = (typeof VARIANTS)[number]

/** The request body, as the client sends it (~130 bytes). */
export interface DeployBody {
  readonly model: { readonly id: string; readonly version: string }
  readonly resources: { readonly gpus: number; readonly memoryGiB: number; readonly replicas: number }
  readonly environment: "dev"
}

/** The fixed body of every request. */
export const BODY: DeployBody = {
  model: { id: "llama-3-8b", version: "2026.11.1" },
  resources: { gpus: 1, memoryGiB: 16, replicas: 1 },
  environment: "dev"
}

/**
 * Headers of every request, plain servers included (they ignore the credentials), so both sides parse the same bytes.
 * The key is the reference app's published demo key of alice, not a secret.
 */
export const HEADERS: Readonly<Record<string, string>> = {
  "content-type": "application/json",
  authorization: "Bearer egl-demo-alice"
}

/** The path of the route on each adapter's server. */
export const PATHS: Readonly<Record<Adapter, string>> = {
  express: "/serving/deploy_model",
  nest: "/serving/deploy_model",
  trpc: "/deployModel"
}

/** The trivial handler every server runs: a tiny JSON answer from the body. */
export const reply = (body: {
  readonly model: { readonly id: string }
}): { readonly ok: true; readonly model: string } => ({
  ok: true,
  model: body.model.id
})

/** Messages from the parent to a server process. */
export type ToServer = { readonly type: "start" } | { readonly type: "stop" } | { readonly type: "exit" }

/** Messages from a server process to the parent. */
export type FromServer =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "started" }
  | {
      readonly type: "stopped"
      /** CPU time (user + system) the server used between `start` and `stop`, µs. */
      readonly cpuUs: number
      /** Wall time between `start` and `stop`, µs. */
      readonly wallUs: number
      /** Ledger records appended between `start` and `stop` (governed servers). */
      readonly records?: number
    }
  | { readonly type: "closed"; readonly ledger?: { readonly records: number; readonly verified: boolean } }
