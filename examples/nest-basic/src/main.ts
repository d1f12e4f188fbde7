/**
 * Starts the example on `PORT` (default 3001) and prints a few requests to try.
 * @module
 */
import { createApp } from "./app.ts"

const port = Number(process.env.PORT ?? 3001)
const app = await createApp()
app.enableShutdownHooks()
await app.listen(port)

const base = `http://localhost:${port}`
const deploy = (key: string, body: string) =>
  `curl -s -XPOST ${base}/serving/deploy_model -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' -d '${body}'`
const dev = (gpus: number, replicas: number) =>
  `{"model":{"id":"llama-3-8b","version":"2026.11.1"},"resources":{"gpus":${gpus},"replicas":${replicas}},"environment":"dev"}`

console.log(`@egl/nest example listening on ${base}. Try:

# alice (ml-engineer) deploys to dev: 201, granted tier 2
${deploy("egl-demo-alice", dev(2, 1))}
# alice asks for 6 replicas: granted 4 (RESOURCE_CLAMPED)
${deploy("egl-demo-alice", dev(1, 6))}
# alice asks for 8 GPUs: 403 RESOURCE_LIMIT_EXCEEDED
${deploy("egl-demo-alice", dev(8, 1))}
# carol (viewer): 403 POLICY_DENY
${deploy("egl-demo-carol", dev(1, 1))}
# no key: 401
curl -s -XPOST ${base}/serving/deploy_model -H 'Content-Type: application/json' -d '${dev(1, 1)}'
# the ledger verifies
curl -s ${base}/ledger/verify
`)
