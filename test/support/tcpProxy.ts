/**
 * A TCP proxy in front of a local service (PostgreSQL, Redis), so a test can make the service unreachable for one
 * client — `cut()` refuses new connections and drops open ones — and bring it back with `restore()`, without stopping
 * the machine's service that other tests share.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net"

/** A running proxy. */
export interface TcpProxy {
  /** The port clients connect to (127.0.0.1). */
  readonly port: number
  /** Drops every open connection and refuses new ones. */
  cut(): Promise<void>
  /** Accepts connections again, on the same port. */
  restore(): Promise<void>
  close(): Promise<void>
}

/** Starts a proxy to `127.0.0.1:targetPort`. */
export const tcpProxy = async (targetPort: number): Promise<TcpProxy> => {
  const sockets = new Set<Socket>()
  let server: Server | undefined
  let port = 0
  const listen = async () => {
    const s = createServer((client) => {
      const upstream = createConnection({ host: "127.0.0.1", port: targetPort })
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.once("close", () => sockets.delete(socket))
        socket.on("error", () => undefined)
      }
      client.pipe(upstream).pipe(client)
      client.once("close", () => upstream.destroy())
      upstream.once("close", () => client.destroy())
    })
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject)
      s.listen(port, "127.0.0.1", () => resolve())
    })
    port = (s.address() as { port: number }).port
    server = s
  }
  const cut = async () => {
    const s = server
    server = undefined
    for (const socket of sockets) socket.destroy()
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()))
  }
  await listen()
  return {
    get port() {
      return port
    },
    cut,
    restore: async () => {
      if (server === undefined) await listen()
    },
    close: cut
  }
}
