/**
 * `@egl/ledger-sqlite`: the SQLite ledger backend for the Execution Governance Layer.
 * @module
 */
export * as SqliteLedger from "./SqliteLedger.ts"
