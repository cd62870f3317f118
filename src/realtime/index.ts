export { NotificationWebSocketServer } from "./server.js";
export type { RealtimeDeps } from "./server.js";
export * from "./protocol.js";
