export { AnalyticsService } from "./service.js";
export type {
  AnalyticsDeps,
  NotificationMetrics,
  UserMetrics,
  TypeMetrics,
  Trends,
  TrendBucket,
  TopNotification,
  Overview,
} from "./service.js";
export { AnalyticsIngest } from "./ingest.js";
export type { AnalyticsIngestOptions, FlushListener } from "./ingest.js";
export { rebuildRollups } from "./rollups.js";
export { RollupWorker, rollUpWithin } from "./roller.js";
export type { RollupWorkerOptions, RolledUp, RollupListener } from "./roller.js";
export type { RebuildRollupsOptions } from "./rollups.js";
export { rate, withRates, TREND_INTERVALS, TOP_BY } from "./metrics.js";
export type { Metrics, Rates, EventCounts, TrendInterval, TopBy, ByChannel, ChannelCounts } from "./metrics.js";
export { EXPORT_FORMATS, EXPORT_KINDS, EVENT_COLUMNS, AGGREGATE_COLUMNS, csvField } from "./export.js";
export type { ExportFormat, ExportKind } from "./export.js";
export * from "./events.js";
