/** @shopfds/runtime/redis: the Redis Cluster client and the session store on it. */
export { connectRedisCluster } from "./client";
export type { RedisClientOptions } from "./client";
export { SessionStore } from "./sessions";
export type { Session, SessionStoreOptions } from "./sessions";
