export { AnalyticsService } from "./service.js";
export type { AnalyticsDeps } from "./service.js";
export { AnalyticsIngest } from "./ingest.js";
export * from "./events.js";
