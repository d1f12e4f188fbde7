/**
 * Runs the Cedar measurement in its own process (spawned by run.ts, no --expose-gc): on Node 20 an explicit `gc()`
 * followed by calls into the cedar-wasm module aborts V8 ("Fatal error … unreachable code" in the deoptimizer), so the
 * wasm module never shares a process with the forced collections of the other phases.
 *
 * Prints one JSON line: the allow/deny answer for every request of the mix (for the parity check) and ns per check
 * for each repetition.
 */
import { cedarAllows, cedarCall, prepareCedar } from "./cedar.ts"
import { mix } from "./mix.ts"
import { now } from "./stats.ts"

const reps = Math.max(1, Number(process.env.BENCH_REPS ?? 5))
const seconds = Number(process.env.BENCH_CEDAR_SECONDS ?? 0.5)
const version = prepareCedar()
const calls = mix.map(cedarCall)
const answers = calls.map(cedarAllows)

let sink = 0
const nsPerCheck = (): number => {
  let n = 0
  const t0 = now()
  const deadline = t0 + BigInt(Math.round(seconds * 1e9))
  while (now() < deadline) {
    for (let k = 0; k < 500; k++) if (cedarAllows(calls[(n + k) % calls.length]!)) sink++
    n += 500
  }
  return Number(now() - t0) / n
}
nsPerCheck() // warm-up
const ns: Array<number> = []
for (let r = 0; r < reps; r++) ns.push(nsPerCheck())
console.log(JSON.stringify({ version, answers, ns, sink }))
