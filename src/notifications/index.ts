export { NotificationService } from "./service.js";
export type { NotificationDeps } from "./service.js";
export * from "./types.js";
