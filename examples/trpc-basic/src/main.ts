/**
 * Starts the server on `PORT` (default 3002), calls `deployModel` with `@trpc/client` as alice (admitted) and carol
 * (denied), prints what each got and whether the ledger verifies, then exits — or keeps serving with `--serve`.
 */
import { createTRPCClient, httpLink, isTRPCClientError } from "@trpc/client"
import { createServer, type AppRouter } from "./server.ts"

const port = Number(process.env.PORT ?? 3002)
const running = await (await createServer()).listen(port)
console.log(`tRPC server on ${running.url}`)

const clientAs = (apiKey: string) =>
  createTRPCClient<AppRouter>({
    links: [httpLink({ url: running.url, headers: { authorization: `Bearer ${apiKey}` } })]
  })

const input = {
  model: { id: "llama-3-8b", version: "2026.11.1" },
  environment: "dev",
  resources: { gpus: 2, replicas: 6 }
} as const

for (const [who, apiKey] of [
  ["alice", "egl-demo-alice"],
  ["carol", "egl-demo-carol"]
] as const) {
  try {
    const result = await clientAs(apiKey).deployModel.mutate(input)
    console.log(`${who}: admitted`, result)
  } catch (error) {
    if (!isTRPCClientError<AppRouter>(error)) throw error
    console.log(`${who}: ${error.data?.code}`, {
      message: error.message,
      reasonCodes: error.data?.egl?.reasonCodes,
      envelopeId: error.data?.egl?.envelopeId
    })
  }
}

const report = await running.governance.verifyLedger()
console.log("ledger:", { ok: report.ok, length: report.length })

if (process.argv.includes("--serve")) {
  console.log("serving; Ctrl-C to stop")
  process.once("SIGINT", () => void running.close().then(() => console.log("stopped")))
} else {
  await running.close()
}
