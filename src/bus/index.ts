export type { Bus, BusHandler, SharedRedis } from "./bus.js";
export { MemoryBus } from "./memory-bus.js";
export { RedisBus } from "./redis-bus.js";
export { createPresence } from "./presence.js";
export type { Presence, PresenceOptions } from "./presence.js";
