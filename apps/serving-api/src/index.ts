/**
 * The reference app as a library, for tests and embedding: `createApp` (the Express app over a governance instance),
 * `start` (the whole server from a configuration), the demo configuration and the `deploy_model` route.
 * @module
 */
export { createApp, type AppOptions, type ServingApp } from "./App.ts"
export * as Config from "./Config.ts"
export * as Demo from "./Demo.ts"
export * as DeployModel from "./DeployModel.ts"
export { start, ledgerOf, type Running } from "./Server.ts"
