/**
 * `@egl/redis`: a shared Redis deterministic cache, a shared grant store, and tier pools on BullMQ for running admitted
 * executions on separate worker fleets.
 * @module
 */
export * as RedisCacheStore from "./RedisCacheStore.ts"
export * as RedisGrantStore from "./RedisGrantStore.ts"
export * as TierQueues from "./TierQueues.ts"
export * as TierWorker from "./TierWorker.ts"
