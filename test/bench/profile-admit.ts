/**
 * A variant of the admission loop for profiling (not part of `pnpm bench`):
 *
 *   cd test && taskset -c 1 node --cpu-prof --cpu-prof-dir=/tmp/egl-prof --conditions=@egl/source --import tsx bench/profile-admit.ts [seconds]
 *   node --import tsx bench/cpuprofile-top.ts /tmp/egl-prof/<file>.cpuprofile
 *
 * Admits the benchmark's request mix sequentially for the given time (default 10 s) on a memory ledger, logger off.
 */
import { createGovernance } from "@egl/core"
import { policy, registry } from "../../packages/core/test/fixtures/scenario.ts"
import { mix, toRequest } from "./mix.ts"

const seconds = Number(process.argv[2] ?? 10)
const requests = mix.map(toRequest)
const egl = await createGovernance({
  registry,
  policy,
  ledger: "memory",
  ledgerOptions: { checkpointIntervalMs: 0 },
  logger: false
})
const deadline = performance.now() + seconds * 1000
let n = 0
while (performance.now() < deadline) await egl.admit(requests[n++ % requests.length]!)
console.log(`${n} admissions in ${seconds} s: ${((seconds * 1e6) / n).toFixed(1)} µs each`)
await egl.close()
