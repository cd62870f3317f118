export { NotificationWebSocketServer, DEFAULT_REALTIME_OPTIONS } from "./server.js";
export type { RealtimeDeps, RealtimeLimits, RealtimeOptions } from "./server.js";

