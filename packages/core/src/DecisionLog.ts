/**
 * Structured decision logs (pino), with secrets redacted.
 *
 * One line per decision and per execution outcome, keyed by envelope id, so a log search and a ledger lookup meet.
 * Redaction covers the usual carriers of secrets (authorization headers, API keys, tokens, passwords, private keys)
 * wherever they appear in a logged object. Logging is off unless configured: a library does not write to stdout by
 * default.
 * @module
 */
import { Context, Layer } from "effect"
import { pino, type Logger, type LoggerOptions } from "pino"

/** Paths pino censors in every log line. */
export const redactPaths: ReadonlyArray<string> = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "apiKey",
  "*.apiKey",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "password",
  "*.password",
  "privateKeyPem",
  "*.privateKeyPem",
  "*.*.privateKeyPem",
  "cookie",
  "*.cookie"
]

/** pino options with EGL's redaction merged in. */
export const loggerOptions = (options?: LoggerOptions): LoggerOptions => ({
  name: "egl",
  ...options,
  redact: {
    paths: [...redactPaths, ...(Array.isArray(options?.redact) ? options.redact : (options?.redact?.paths ?? []))],
    censor: "[redacted]"
  }
})

/** The decision log service: a pino logger, or none. */
export class DecisionLog extends Context.Service<
  DecisionLog,
  {
    /** The logger, or undefined when decision logging is off (the hot path then pays nothing). */
    readonly logger: Logger | undefined
  }
>()("@egl/core/DecisionLog") {
  /** Decision logging off. */
  static readonly layerSilent = Layer.succeed(DecisionLog, DecisionLog.of({ logger: undefined }))
  /** Logs through a pino logger built with {@link loggerOptions} (redaction on) or through the given logger. */
  static readonly layer = (logger: Logger | LoggerOptions | undefined) =>
    Layer.sync(DecisionLog, () => DecisionLog.of({ logger: isLogger(logger) ? logger : pino(loggerOptions(logger)) }))
}

const isLogger = (x: unknown): x is Logger =>
  typeof x === "object" &&
  x !== null &&
  typeof (x as Logger).info === "function" &&
  typeof (x as Logger).child === "function"
