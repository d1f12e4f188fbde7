/**
 * The HTTP client of the malformed-body run, in a child process: it receives the requests over IPC, sends them over one
 * keep-alive agent with a few sockets, and answers every reply (status, media type, body). Running the client in its
 * own process leaves the app's process (the test's) one core to itself: on two cores, 10 000 requests take about half
 * the time they take with client and server sharing one event loop.
 *
 * Started by {@link runFuzzClient} with `node --import tsx`.
 */
import { fork } from "node:child_process"
import { Agent, request } from "node:http"
import { dirname } from "node:path"
import { fileURLToPath } from "node:url"

/** One request of the run. */
export interface FuzzRequest {
  readonly contentType: string | undefined
  readonly body: Uint8Array
}

/** What came back for one request. */
export interface FuzzReply {
  readonly status: number
  readonly contentType: string | undefined
  readonly text: string
}

interface Job {
  readonly port: number
  readonly path: string
  readonly authorization: string
  readonly concurrency: number
  readonly requests: ReadonlyArray<FuzzRequest>
}

type Answer = { readonly replies: ReadonlyArray<FuzzReply> } | { readonly error: string }

/** Sends `requests` from a child process and resolves to their replies, in order. */
export const runFuzzClient = (job: Job, timeoutMs: number): Promise<ReadonlyArray<FuzzReply>> =>
  new Promise((resolve, reject) => {
    const file = fileURLToPath(import.meta.url)
    const child = fork(file, [], {
      cwd: dirname(file),
      execArgv: ["--import", "tsx"],
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    let answered = false
    child.once("message", (answer: Answer) => {
      answered = true
      clearTimeout(timer)
      child.disconnect()
      if ("error" in answer) reject(new Error(`fuzz client: ${answer.error}`))
      else resolve(answer.replies)
    })
    child.once("error", reject)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      if (!answered) reject(new Error(`fuzz client exited without answering (code ${code}, signal ${signal})`))
    })
    child.send(job)
  })

const sendAll = async (job: Job): Promise<ReadonlyArray<FuzzReply>> => {
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency })
  const replies: Array<FuzzReply> = new Array(job.requests.length)
  const send = (req: FuzzRequest): Promise<FuzzReply> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {
        authorization: job.authorization,
        "content-length": req.body.length
      }
      if (req.contentType !== undefined) headers["content-type"] = req.contentType
      const outgoing = request({ host: "127.0.0.1", port: job.port, agent, method: "POST", path: job.path, headers })
      outgoing.on("response", (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("error", reject)
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers["content-type"],
            text: Buffer.concat(chunks).toString("utf8")
          })
        )
      })
      outgoing.on("error", reject)
      outgoing.end(req.body)
    })
  let next = 0
  const worker = async () => {
    while (next < job.requests.length) {
      const i = next++
      replies[i] = await send(job.requests[i]!)
    }
  }
  try {
    await Promise.all(Array.from({ length: job.concurrency }, worker))
  } finally {
    agent.destroy()
  }
  return replies
}

// In the child: one job, one answer.
if (process.send !== undefined && process.argv[1] === fileURLToPath(import.meta.url)) {
  process.once("message", (job: Job) => {
    sendAll(job).then(
      (replies) => process.send!({ replies } satisfies Answer),
      (error: unknown) =>
        process.send!({ error: error instanceof Error ? error.message : String(error) } satisfies Answer)
    )
  })
}
