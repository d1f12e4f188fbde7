/**
 * `@egl/ledger-postgres`: the PostgreSQL ledger backend of the Execution Governance Layer, where several app instances
 * append to one consistent chain, and the grant store they share.
 * @module
 */
export * as PostgresGrantStore from "./PostgresGrantStore.ts"
export * as PostgresLedger from "./PostgresLedger.ts"
