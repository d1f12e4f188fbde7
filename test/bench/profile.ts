/**
 * Profiles a variant of a benchmark loop with `node --cpu-prof`, then prints the hot spots (self time by function and
 * by file, inclusive time of `@egl/core` functions).
 *
 *   cd test && taskset -c 1 node --conditions=@egl/source --import tsx bench/profile.ts [target=admit] [seconds=10] [top=25]
 *
 * Targets: `admit` (bench/profile-admit.ts: sequential `egl.admit()` of the mix, memory ledger), `group-commit` and
 * `verify-sqlite` (bench/profile-ledger.ts).
 *
 * tsx compiles each module to a single minified line, which leaves a profile without usable positions; so the loop is
 * first bundled, unminified, with the esbuild that tsx already depends on (workspace packages from source through the
 * `@egl/source` condition). Frames are attributed to source files through esbuild's `// path` section comments.
 * The profile file stays in the printed temp directory for Chrome DevTools / speedscope.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const target = process.argv[2] ?? "admit"
const seconds = process.argv[3] ?? "10"
const top = Number(process.argv[4] ?? 25)
const entries: Record<string, { readonly file: string; readonly args: ReadonlyArray<string> }> = {
  admit: { file: "profile-admit.ts", args: [seconds] },
  "group-commit": { file: "profile-ledger.ts", args: ["group-commit", seconds] },
  "verify-sqlite": { file: "profile-ledger.ts", args: ["verify-sqlite", seconds] }
}
const entry = entries[target]
if (entry === undefined) throw new Error(`unknown target "${target}"; one of ${Object.keys(entries).join(", ")}`)
const here = dirname(fileURLToPath(import.meta.url))
const out = mkdtempSync(join(tmpdir(), "egl-prof-"))
const bundle = join(out, "profile.mjs")

const requireFromTsx = createRequire(createRequire(import.meta.url).resolve("tsx/package.json"))
/** The part of esbuild's API used here (esbuild is tsx's dependency, not ours, so its types are not visible). */
interface Esbuild {
  build(options: Record<string, unknown>): Promise<unknown>
}
const esbuild = requireFromTsx("esbuild") as Esbuild
await esbuild.build({
  entryPoints: [join(here, entry.file)],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["@egl/source"],
  minify: false,
  outfile: bundle,
  // better-sqlite3 is a native addon: left out of the bundle and loaded from where @egl/ledger-sqlite installed it.
  plugins: [
    {
      name: "native-addons",
      setup(build: { onResolve(options: { filter: RegExp }, f: () => { path: string; external: boolean }): void }) {
        const fromSqlite = createRequire(join(here, "../../packages/ledger-sqlite/package.json"))
        build.onResolve({ filter: /^better-sqlite3$/ }, () => ({
          path: fromSqlite.resolve("better-sqlite3"),
          external: true
        }))
      }
    }
  ],
  // CommonJS dependencies bundled into ESM need `require`.
  banner: { js: 'import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);' },
  logLevel: "warning"
})

const run = spawnSync(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${out}`, bundle, ...entry.args], {
  stdio: "inherit"
})
if (run.status !== 0) throw new Error(`profiled loop exited with ${run.status}`)
const file = readdirSync(out).find((f) => f.endsWith(".cpuprofile"))
if (file === undefined) throw new Error("no .cpuprofile written")

interface ProfileNode {
  readonly id: number
  readonly children?: ReadonlyArray<number>
  readonly positionTicks?: ReadonlyArray<{ readonly line: number; readonly ticks: number }>
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
const profile = JSON.parse(readFileSync(join(out, file), "utf8")) as {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

// Section starts of the bundle: `// ../../packages/core/src/Admission.ts` → line.
const sections: Array<{ readonly line: number; readonly path: string }> = []
const bundleLines = readFileSync(bundle, "utf8").split("\n")
bundleLines.forEach((text, line) => {
  const m = /^\/\/ (\S+\.(?:ts|js|mjs|cjs))$/.exec(text)
  if (m !== null) sections.push({ line, path: m[1]! })
})
const sourceOf = (line: number): string => {
  let path = "?"
  for (const s of sections) {
    if (s.line > line) break
    path = s.path
  }
  const core = /(packages\/[^/]+\/(?:src|test)\/.+)$/.exec(path)
  if (core !== null) return core[1]!
  const dep = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+\/.+)$/.exec(path)
  if (dep !== null) return dep[1]!
  return path.replace(/^(\.\.\/)+/, "")
}

const self = new Map<number, number>()
let total = 0
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0
  self.set(id, (self.get(id) ?? 0) + dt)
  total += dt
})
const keyOf = new Map<number, { readonly source: string; readonly fn: string }>()
const parentOf = new Map<number, number>()
for (const node of profile.nodes) {
  const { url, functionName, lineNumber } = node.callFrame
  const source = url.endsWith(bundle) ? sourceOf(lineNumber) : url === "" ? "(vm)" : url
  keyOf.set(node.id, { source, fn: `${source}:${functionName === "" ? "(anonymous)" : functionName}` })
  for (const c of node.children ?? []) parentOf.set(c, node.id)
}
const byFunction = new Map<string, number>()
const byFile = new Map<string, number>()
for (const [id, t] of self) {
  const { source, fn } = keyOf.get(id)!
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + t)
  byFile.set(source, (byFile.get(source) ?? 0) + t)
}
// Inclusive time: each sample counts once for every distinct function on its stack.
const inclusive = new Map<string, number>()
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0
  const seen = new Set<string>()
  for (let n: number | undefined = id; n !== undefined; n = parentOf.get(n)) seen.add(keyOf.get(n)!.fn)
  for (const fn of seen) inclusive.set(fn, (inclusive.get(fn) ?? 0) + dt)
})
const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)} %`
const print = (title: string, m: Map<string, number>, keep: (k: string) => boolean = () => true) => {
  console.log(`\n${title}`)
  for (const [k, t] of [...m]
    .filter(([k]) => keep(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top))
    console.log(`${pct(t)}  ${k}`)
}
console.log(`\nprofile: ${join(out, file)} (${(total / 1e3).toFixed(0)} ms sampled)`)
print("self time by function (all):", byFunction)
print("self time by file:", byFile)
print("self time by function in @egl/core:", byFunction, (k) => k.startsWith("packages/core/"))
print("inclusive (total) time by function in @egl/core:", inclusive, (k) => k.startsWith("packages/core/"))

// Hottest source lines of the workspace packages (V8's line ticks of each function, 1-based bundle lines).
const lineTicks = new Map<string, number>()
let allTicks = 0
for (const node of profile.nodes) {
  for (const t of node.positionTicks ?? []) {
    allTicks += t.ticks
    if (!node.callFrame.url.endsWith(bundle)) continue
    const source = sourceOf(t.line - 1)
    if (!source.startsWith("packages/")) continue
    const key = `${source}:${keyOf.get(node.id)!.fn.slice(source.length + 1)}: ${(bundleLines[t.line - 1] ?? "").trim().slice(0, 100)}`
    lineTicks.set(key, (lineTicks.get(key) ?? 0) + t.ticks)
  }
}
console.log("\nhottest lines in packages/* (share of line-attributed ticks):")
for (const [k, t] of [...lineTicks].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
  console.log(`${((100 * t) / Math.max(1, allTicks)).toFixed(1).padStart(5)} %  ${k}`)
}
