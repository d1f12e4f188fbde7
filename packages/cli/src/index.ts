/**
 * `@egl/cli`: the `egl` command, and its commands as functions for programs that want their results without a
 * process (each command module has a typed Effect function, e.g. `LedgerVerify.verify`, and its `command`).
 * @module
 */
export * as Command from "./Command.ts"
export * as CommandError from "./CommandError.ts"
export * as EnvelopeShow from "./EnvelopeShow.ts"
export * as Fingerprint from "./Fingerprint.ts"
export * as Io from "./Io.ts"
export * as LedgerVerify from "./LedgerVerify.ts"
export * as PolicySnapshot from "./PolicySnapshot.ts"
export { main } from "./main.ts"
