/**
 * Where a governed server's CPU goes under load (part of the adapter benchmark's analysis, not of its run):
 *
 *   cd test && taskset -c 0 node --conditions=@egl/source --import tsx bench/profile-adapter.ts [adapter=express] [connections=50] [seconds=10] [top=30] [variant=governed]
 *
 * Runs the adapter's plain and governed (memory ledger; `governed-sqlite` as the last argument for the SQLite ledger) servers as `bench/adapters.ts` does (own process on
 * `ADAPTER_SERVER_CPU`, 2 s warm-up, autocannon from here) with the measured window CPU-profiled through the inspector
 * (`ADAPTER_PROFILE`), then prints each one's CPU per request split by area (Node's HTTP stack, Express, Effect,
 * `@egl/core` by module, garbage collection, …) and the governed server's hottest functions, self and inclusive.
 * Shares of the profile are turned into µs per request with the server's measured CPU time per request (profiled: the
 * profiler's own overhead, sampling every 1 ms, is in both columns). The inspector's own work is left out. The `.cpuprofile` files stay in the printed temp directory.
 */
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { cannon, startServer } from "./adapter-load.ts"
import { ADAPTERS, VARIANTS, type Adapter, type Variant } from "./adapter-request.ts"

const adapter = (process.argv[2] ?? "express") as Adapter
const connections = Number(process.argv[3] ?? 50)
const seconds = Number(process.argv[4] ?? 10)
const top = Number(process.argv[5] ?? 30)
const governedVariant = (process.argv[6] ?? "governed") as Variant
if (!VARIANTS.includes(governedVariant) || governedVariant === "plain")
  throw new Error(`variant: governed or governed-sqlite`)
if (!ADAPTERS.includes(adapter)) throw new Error(`adapter: one of ${ADAPTERS.join(", ")}`)
const out = mkdtempSync(join(tmpdir(), "egl-prof-adapter-"))

interface ProfileNode {
  readonly id: number
  readonly children?: ReadonlyArray<number>
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const PSEUDO = new Set(["(garbage collector)", "(program)", "(idle)", "(root)"])
/** Node subsystems that own their time (the HTTP stack); other Node code is charged to its caller. */
const NODE_OWNS =
  /^node:(?:internal\/)?(?:deps\/)?(?:http|_http|net|stream|streams|timers|process|events|async_hooks|llhttp)/

/**
 * The area a frame's own time is charged to: an npm package, a workspace module, Node's HTTP stack, a V8 pseudo-frame;
 * or `undefined` for native and other Node frames (crypto, performance, util…), charged to their caller's area.
 */
const ownAreaOf = (url: string, fn: string): string | undefined => {
  if (url === "") return PSEUDO.has(fn) ? fn : undefined
  const ws = /\/(packages|apps)\/([^/]+)\/src\/(.+)$/.exec(url)
  if (ws !== null) return `${ws[1] === "packages" ? "@egl/" : ""}${ws[2]}/${ws[3]}`
  if (/\/test\/bench\//.test(url)) return "bench (handler, server)"
  const dep = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (dep !== null) return dep[1]!
  if (NODE_OWNS.test(url)) return "node:http"
  return undefined
}

/** Coarser groups for the per-request table. */
const groupOf = (area: string): string => {
  if (area.startsWith("@egl/core/")) return `@egl/core ${area.slice("@egl/core/".length)}`
  if (area.startsWith("@egl/")) return area.split("/").slice(0, 2).join("/")
  if (area === "node:http") return "Node core (http, net, streams, timers)"
  if (area === "(node)") return "Node core (other)"
  if (
    ["express", "router", "body-parser", "raw-body", "iconv-lite", "type-is", "content-type", "finalhandler"].includes(
      area
    )
  )
    return "Express (+ body-parser, router)"
  if (area.startsWith("@nestjs/") || area === "rxjs" || area === "reflect-metadata") return "Nest (+ rxjs)"
  if (area.startsWith("@trpc/")) return "tRPC"
  return area
}

interface Analysis {
  /** µs of CPU per request by group. */
  readonly groups: Map<string, number>
  readonly selfFns: Map<string, number>
  readonly inclusiveFns: Map<string, number>
  readonly cpuPerRequestUs: number
  readonly requests: number
  readonly file: string
}

const analyse = (file: string, cpuPerRequestUs: number, requests: number): Analysis => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
  const parentOf = new Map<number, number>()
  const keyOf = new Map<number, { area: string; fn: string }>()
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id)
  const areaOf = (id: number): string => {
    const known = keyOf.get(id)
    if (known !== undefined) return known.area
    const { url, functionName } = byId.get(id)!.callFrame
    const parent = parentOf.get(id)
    const own = ownAreaOf(url, functionName)
    const inherited = parent === undefined ? "(node)" : areaOf(parent)
    const area = own ?? (PSEUDO.has(inherited) ? "(node)" : inherited)
    const name = functionName || "(anonymous)"
    const label = own !== undefined ? name : url === "" ? `[native] ${name}` : `[${url}] ${name}`
    keyOf.set(id, { area, fn: `${area}: ${label}` })
    return area
  }
  for (const n of profile.nodes) areaOf(n.id)
  // The inspector's own work (Profiler.stop) is not the server's.
  const inspector = new Set<number>()
  for (const n of profile.nodes)
    if (n.callFrame.url === "node:inspector") for (const c of n.children ?? []) inspector.add(c)
  const underInspector = (id: number): boolean => {
    for (let n: number | undefined = id; n !== undefined; n = parentOf.get(n)) if (inspector.has(n)) return true
    return false
  }
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => {
    if (!underInspector(id)) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  let busy = 0
  for (const [id, t] of self) if (keyOf.get(id)!.area !== "(idle)") busy += t
  const perRequest = (t: number) => (t / busy) * cpuPerRequestUs
  const groups = new Map<string, number>()
  const selfFns = new Map<string, number>()
  for (const [id, t] of self) {
    const { area, fn } = keyOf.get(id)!
    if (area === "(idle)") continue
    const g = groupOf(area)
    groups.set(g, (groups.get(g) ?? 0) + perRequest(t))
    selfFns.set(fn, (selfFns.get(fn) ?? 0) + perRequest(t))
  }
  const inclusiveFns = new Map<string, number>()
  for (const [id, t] of self) {
    if (keyOf.get(id)!.area === "(idle)") continue
    const seen = new Set<string>()
    for (let n: number | undefined = id; n !== undefined; n = parentOf.get(n)) seen.add(keyOf.get(n)!.fn)
    for (const fn of seen) inclusiveFns.set(fn, (inclusiveFns.get(fn) ?? 0) + perRequest(t))
  }
  return { groups, selfFns, inclusiveFns, cpuPerRequestUs, requests, file }
}

const profileRun = async (variant: Variant): Promise<Analysis> => {
  const file = join(out, `${adapter}-${variant}.cpuprofile`)
  const server = await startServer(adapter, variant, { ADAPTER_PROFILE: file })
  try {
    await cannon(server.port, adapter, connections, 2)
    await server.request({ type: "start" })
    const result = await cannon(server.port, adapter, connections, seconds)
    const stopped = await server.request({ type: "stop" })
    await server.request({ type: "exit" })
    if (stopped.type !== "stopped") throw new Error("unexpected answer")
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx, ${result.errors} errors`)
    console.log(
      `${adapter} ${variant} @${connections} (profiled): ${result.requests.mean.toFixed(0)} req/s, ` +
        `${(stopped.cpuUs / result.requests.total).toFixed(1)} µs CPU/request, ${((100 * stopped.cpuUs) / stopped.wallUs).toFixed(0)} % of the core`
    )
    return analyse(file, stopped.cpuUs / result.requests.total, result.requests.total)
  } finally {
    if (server.child.exitCode === null) server.child.kill()
  }
}

const plain = await profileRun("plain")
const governed = await profileRun(governedVariant)
console.log(`\nprofiles: ${plain.file}, ${governed.file}`)

const us = (x: number | undefined) => (x === undefined || x < 0.05 ? "" : `${x.toFixed(1)} µs`)
console.log(`\nCPU per request by area (${adapter}, ${connections} connections):\n`)
console.log(`| area | plain | governed | delta | share of governed CPU |`)
console.log(`|---|---:|---:|---:|---:|`)
const names = [...new Set([...plain.groups.keys(), ...governed.groups.keys()])].sort(
  (a, b) => (governed.groups.get(b) ?? 0) - (governed.groups.get(a) ?? 0)
)
for (const g of names) {
  const p = plain.groups.get(g) ?? 0
  const v = governed.groups.get(g) ?? 0
  if (p < 0.05 && v < 0.05) continue
  console.log(
    `| ${g} | ${us(p)} | ${us(v)} | ${us(v - p) === "" ? "" : `+${(v - p).toFixed(1)} µs`} | ${((100 * v) / governed.cpuPerRequestUs).toFixed(1)} % |`
  )
}
console.log(
  `| **total** | ${plain.cpuPerRequestUs.toFixed(1)} µs | ${governed.cpuPerRequestUs.toFixed(1)} µs | +${(governed.cpuPerRequestUs - plain.cpuPerRequestUs).toFixed(1)} µs | 100 % |`
)

const list = (title: string, m: Map<string, number>, keep: (k: string) => boolean = () => true) => {
  console.log(`\n${title}`)
  for (const [k, t] of [...m]
    .filter(([k]) => keep(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    console.log(`${t.toFixed(2).padStart(8)} µs  ${k}`)
}
list("governed: self time per request by function (all):", governed.selfFns)
list("governed: inclusive time per request of workspace functions (@egl/*):", governed.inclusiveFns, (k) =>
  k.startsWith("@egl/")
)
