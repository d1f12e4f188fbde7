/**
 * Starts the example on PORT (default 3003) and prints requests to try.
 */
import { createApp } from "./app.ts"

const port = Number(process.env["PORT"] ?? 3003)
const { app, close } = await createApp()
const server = app.listen(port, "127.0.0.1", () => {
  const url = `http://127.0.0.1:${port}`
  console.log(`express-basic listening on ${url}. Try:
  curl -s -XPOST ${url}/inference/predict -H 'Authorization: Bearer example-key-ana' -H 'Content-Type: application/json' \\
    -d '{"scope":{"environment":"dev"},"input":{"prompt":"hello"}}'
  curl -s -XPOST ${url}/inference/predict -H 'Authorization: Bearer example-key-gus' -H 'Content-Type: application/json' \\
    -d '{"scope":{"environment":"dev"},"input":{"prompt":"hello"}}'
  curl -si -XPOST ${url}/text/normalize -H 'Authorization: Bearer example-key-gus' -H 'Content-Type: application/json' \\
    -d '{"scope":{"environment":"dev"},"input":{"text":"  Hello   World "}}'   # twice: the second is EGL-Cache: hit`)
})
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => server.close(() => void close().then(() => process.exit(0))))
}
