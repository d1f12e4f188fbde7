/**
 * A TCP proxy in front of the machine's Redis: closing it makes Redis unreachable for the clients behind it (their
 * connections drop and new ones are refused) without stopping Redis for the other tests that share it.
 */
import { createServer, type Server, type Socket, connect } from "node:net"

/** A proxy that can be closed and reopened on the same port. */
export interface RedisProxy {
  readonly port: number
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string
  /** Drops every connection and stops accepting new ones. */
  close(): Promise<void>
  /** Accepts connections again, on the same port. */
  open(): Promise<void>
}

const listen = (server: Server, port: number) =>
  new Promise<number>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject)
      resolve((server.address() as { port: number }).port)
    })
  })

/** Starts a proxy to `targetPort` (default 6379) on a free port. */
export const startProxy = async (targetPort = 6379): Promise<RedisProxy> => {
  const sockets = new Set<Socket>()
  const makeServer = () =>
    createServer((client) => {
      const upstream = connect(targetPort, "127.0.0.1")
      sockets.add(client)
      sockets.add(upstream)
      const drop = () => {
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      client.on("error", drop).on("close", drop)
      upstream.on("error", drop).on("close", drop)
      client.pipe(upstream)
      upstream.pipe(client)
    })
  let server = makeServer()
  const port = await listen(server, 0)
  let open = true
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    close: async () => {
      if (!open) return
      open = false
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const s of sockets) s.destroy()
      sockets.clear()
      await closed
    },
    open: async () => {
      if (open) return
      server = makeServer()
      await listen(server, port)
      open = true
    }
  }
}

/** A port nothing listens on (bound once, then released). */
export const closedPort = async (): Promise<number> => {
  const server = createServer()
  const port = await listen(server, 0)
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
