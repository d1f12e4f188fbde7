/**
 * The reference app served on a real socket for hostile-input tests: a memory-ledger governance over the demo registry
 * and policy, a `deploy` hook that records every envelope the handler ran for, and clients that send exactly what they
 * are given. `fetch` normalizes paths (`..`, `//`, `%2F`) and re-encodes bodies, so requests go through `node:http`
 * with the literal `path`, and framing attacks through a bare TCP socket.
 */
import { createGovernance, type GovernanceInstance } from "@egl/core"
import { createApp, Demo } from "@egl/serving-api"
import { Agent, createServer, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http"
import { connect, type AddressInfo } from "node:net"

/** The demo API keys, by principal. */
export const KEYS = { alice: "egl-demo-alice", bob: "egl-demo-bob", carol: "egl-demo-carol" } as const

/** `Authorization` value of a demo principal. */
export const bearer = (who: keyof typeof KEYS): string => `Bearer ${KEYS[who]}`

/** The route under attack. */
export const DEPLOY_PATH = "/serving/deploy_model"

/** A body every principal's policy can decide on (`dev`, 1 GPU): admitted for alice and bob, denied for carol. */
export const validBody = (): Record<string, unknown> => ({
  model: { id: "llama-3-8b", version: "2024-05-01" },
  resources: { gpus: 1, memoryGiB: 16, replicas: 1 },
  environment: "dev"
})

/** One request, sent as given. */
export interface RawRequest {
  readonly method?: string | undefined
  /** Request target, sent byte for byte (no normalization). */
  readonly path: string
  /** An array value sends the header once per element. */
  readonly headers?: OutgoingHttpHeaders | undefined
  /** Sent with an exact `Content-Length` unless the headers set `Transfer-Encoding`. */
  readonly body?: string | Uint8Array | undefined
}

/** A response as received. */
export interface Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown
}

/** A problem body (RFC 9457) as the app sends it. */
export interface ProblemBody {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly detail: string
  readonly reasonCodes: ReadonlyArray<string>
  readonly envelopeId?: string
}

/** True when a reply is an `application/problem+json` body whose `status` member matches the response status. */
export const isProblem = (reply: Reply): boolean => {
  const body = reply.json as Partial<ProblemBody> | undefined
  return (
    /^application\/problem\+json\b/.test(String(reply.headers["content-type"])) &&
    typeof body === "object" &&
    body !== null &&
    body.status === reply.status &&
    typeof body.type === "string" &&
    typeof body.title === "string" &&
    typeof body.detail === "string" &&
    Array.isArray(body.reasonCodes)
  )
}

/** The problem body of a reply (throws when it is not one, so a wrong answer fails loudly). */
export const problemOf = (reply: Reply): ProblemBody => {
  if (!isProblem(reply)) throw new Error(`not a problem+json reply: ${reply.status} ${reply.text.slice(0, 300)}`)
  return reply.json as ProblemBody
}

/** A decision record of the ledger, parsed. */
export interface DecisionRecord {
  readonly index: number
  readonly envelopeId: string
  readonly outcome: "admitted" | "denied"
  readonly subject: { readonly id: string; readonly roles: ReadonlyArray<string> }
  /** The record's canonical body, as stored. */
  readonly body: string
}

/** The app on a socket, its governance and what its deploy handler ran for. */
export interface ServedApp {
  readonly governance: GovernanceInstance
  readonly port: number
  /** Envelope ids the deploy handler ran for, in order. */
  readonly deployed: ReadonlyArray<string>
  /** Sends one request over the app's keep-alive agent (one socket, reused). */
  send(req: RawRequest): Promise<Reply>
  /** Every decision record of the ledger. */
  decisions(): Promise<ReadonlyArray<DecisionRecord>>
  /** Number of ledger records. */
  ledgerSize(): Promise<number>
  close(): Promise<void>
}

/** Starts the app (default body limit, 64 kB) on `127.0.0.1`, on a free port. */
export const serveApp = async (): Promise<ServedApp> => {
  const governance = await createGovernance({ registry: Demo.registry, policy: Demo.policy })
  const deployed: Array<string> = []
  const { app } = createApp({
    governance,
    apiKeys: Demo.apiKeys,
    deploy: async (envelope) => {
      deployed.push(envelope.id)
      return { deployedFor: envelope.id }
    }
  })
  const server = createServer(app)
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const { port } = server.address() as AddressInfo
  // One socket: requests go one after the other, each on the connection the previous one left.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })

  const send = (req: RawRequest): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const headers: OutgoingHttpHeaders = { ...req.headers }
      const framed = Object.keys(headers).some((h) => /^(content-length|transfer-encoding)$/i.test(h))
      // Without an explicit length, node:http sends a DELETE/OPTIONS body unframed and the server reads it as the
      // next request: always frame the body.
      if (req.body !== undefined && !framed) headers["content-length"] = Buffer.byteLength(req.body)
      const outgoing = request({
        host: "127.0.0.1",
        port,
        agent,
        method: req.method ?? "POST",
        path: req.path,
        headers
      })
      outgoing.on("response", (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("error", reject)
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
        })
      })
      outgoing.on("error", reject)
      outgoing.end(req.body)
    })

  const decisions = async (): Promise<ReadonlyArray<DecisionRecord>> => {
    const { size } = await governance.head()
    const records = await governance.records(0, size)
    return records.flatMap((r) => {
      if (!("kind" in r) || r.kind !== "decision") return []
      const envelope = JSON.parse(r.body) as {
        readonly id: string
        readonly subject: DecisionRecord["subject"]
        readonly decision: { readonly outcome: DecisionRecord["outcome"] }
      }
      return [
        {
          index: r.index,
          envelopeId: envelope.id,
          outcome: envelope.decision.outcome,
          subject: envelope.subject,
          body: r.body
        }
      ]
    })
  }

  return {
    governance,
    port,
    deployed,
    send,
    decisions,
    ledgerSize: async () => (await governance.head()).size,
    close: async () => {
      agent.destroy()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await governance.close()
    }
  }
}

/** What came back on a bare socket. */
export interface RawExchange {
  /** Everything the server sent, as latin1 text. */
  readonly text: string
  /** Status codes of every response line received, in order. */
  readonly statuses: ReadonlyArray<number>
  /** True when the server closed the connection before `waitMs` passed. */
  readonly closedByServer: boolean
  readonly elapsedMs: number
}

/**
 * Writes `bytes` on a fresh TCP connection and collects the answer until the server closes the connection or `waitMs`
 * pass (for requests whose framing lies, where waiting is the point). `halfClose` ends the client's side after writing.
 */
export const exchange = (
  port: number,
  bytes: string | Uint8Array,
  options: { readonly waitMs: number; readonly halfClose?: boolean }
): Promise<RawExchange> =>
  new Promise((resolve) => {
    const started = performance.now()
    const socket = connect({ port, host: "127.0.0.1", allowHalfOpen: true })
    const chunks: Array<Buffer> = []
    let settled = false
    const settle = (closedByServer: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const text = Buffer.concat(chunks).toString("latin1")
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]))
      resolve({ text, statuses, closedByServer, elapsedMs: performance.now() - started })
    }
    const timer = setTimeout(() => settle(false), options.waitMs)
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("end", () => settle(true))
    socket.on("error", () => settle(true))
    socket.write(bytes)
    if (options.halfClose === true) socket.end()
  })

/** An HTTP/1.1 request head from its request line and header lines. */
export const head = (requestLine: string, headerLines: ReadonlyArray<string>): string =>
  [requestLine, "Host: 127.0.0.1", ...headerLines].join("\r\n") + "\r\n\r\n"

/** The JSON body of the first final (non-1xx) response in a raw exchange, if any. */
export const firstJsonBody = (raw: RawExchange): unknown => {
  let at = 0
  for (;;) {
    const line = /HTTP\/1\.[01] (\d{3}) /y
    line.lastIndex = at
    const status = line.exec(raw.text)
    const headEnd = raw.text.indexOf("\r\n\r\n", at)
    if (status === null || headEnd === -1) return undefined
    if (Number(status[1]) < 200) {
      at = headEnd + 4
      continue
    }
    const length = /\r\ncontent-length: *(\d+)/i.exec(raw.text.slice(at, headEnd))
    if (length === null) return undefined
    const body = raw.text.slice(headEnd + 4, headEnd + 4 + Number(length[1]))
    try {
      return JSON.parse(Buffer.from(body, "latin1").toString("utf8"))
    } catch {
      return undefined
    }
  }
}
