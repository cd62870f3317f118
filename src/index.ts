/**
 * Herald's library surface: the guide's four services and the user directory
 * (src/guide.ts: the zero-argument forms), and the composition root for
 * embedding the whole server.
 */
export { AnalyticsService, EmailDigestService, NotificationService, NotificationWebSocketServer, UserDirectory } from "./guide.js";
export type { SmtpConfig, EmailDigest, DigestStats, DigestFrequency, DigestRunSummary } from "./digests/index.js";
export { createHerald } from "./herald.js";
export type { Herald, HeraldOptions } from "./herald.js";
export { createRuntime, defaultRuntime, setDefaultRuntime } from "./runtime.js";
export type { Runtime } from "./runtime.js";
export { loadConfig, ConfigError } from "./config/index.js";
export type { Config } from "./config/index.js";
export { openDatabase, migrate } from "./db/index.js";
// The constructors' optional bus (SPEC: database, bus, clock, logger): the two Herald has, and the interface for another.
export { MemoryBus, RedisBus } from "./bus/index.js";
export type { Bus, BusHandler } from "./bus/index.js";
export { mintToken } from "./auth/index.js";
export { HeraldError } from "./errors/index.js";
export type { NotificationDto } from "./notifications/index.js";
export { NotificationTemplates } from "./notifications/index.js";
export type { CreateNotificationInput, BroadcastInput, NotificationTemplate, GetNotificationsOptions, NotificationPage } from "./notifications/index.js";
export { PreferencesService, decideDelivery, DEFAULT_PREFERENCES } from "./preferences/index.js";
export type { NotificationPreferences, DeliveryDecision, ChannelPlan } from "./preferences/index.js";
export type { User, UserInput } from "./users/index.js";
