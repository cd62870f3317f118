/**
 * Drizzle view of the tables created by `src/db/migrations/*.sql`. The SQL
 * files are the source of truth; this file maps them to the guide's
 * camelCase field names.
 */
import { bigint, boolean, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const users = pgTable("users", {
  id: text("id").primaryKey(),
  email: text("email"),
  phone: text("phone"),
  name: text("name"),
  timezone: text("timezone").notNull().default("UTC"),
  locale: text("locale").notNull().default("en"),
  createdAt: tz("created_at").notNull().defaultNow(),
  updatedAt: tz("updated_at").notNull().defaultNow(),
});

export const notifications = pgTable("notifications", {
  id: uuid("id").primaryKey().defaultRandom(),
  seq: bigint("seq", { mode: "number" }).generatedAlwaysAsIdentity(),
  userId: text("user_id").notNull(),
  type: text("type").notNull(),
  priority: text("priority").notNull(),
  title: text("title").notNull(),
  message: text("message").notNull(),
  description: text("description"),
  icon: text("icon"),
  actionUrl: text("action_url"),
  actionLabel: text("action_label"),
  read: boolean("read").notNull().default(false),
  archived: boolean("archived").notNull().default(false),
  deliveryStatus: text("delivery_status").notNull().default("pending"),
  sentAt: tz("sent_at"),
  deliveredAt: tz("delivered_at"),
  readAt: tz("read_at"),
  relatedId: text("related_id"),
  data: jsonb("data").$type<Record<string, unknown> | null>(),
  idempotencyKey: text("idempotency_key"),
  broadcastId: uuid("broadcast_id"),
  createdAt: tz("created_at").notNull().defaultNow(),
  updatedAt: tz("updated_at").notNull().defaultNow(),
});

export const notificationPreferences = pgTable("notification_preferences", {
  id: uuid("id").primaryKey().defaultRandom(),
  userId: text("user_id").notNull().unique(),
  inAppEnabled: boolean("in_app_enabled").notNull().default(true),
  emailEnabled: boolean("email_enabled").notNull().default(true),
  browserPushEnabled: boolean("browser_push_enabled").notNull().default(false),
  smsEnabled: boolean("sms_enabled").notNull().default(false),
  newMessageEnabled: boolean("new_message_enabled").notNull().default(true),
  bookingRequestEnabled: boolean("booking_request_enabled").notNull().default(true),
  bookingConfirmedEnabled: boolean("booking_confirmed_enabled").notNull().default(true),
  paymentReceivedEnabled: boolean("payment_received_enabled").notNull().default(true),
  platformUpdateEnabled: boolean("platform_update_enabled").notNull().default(true),
  securityAlertEnabled: boolean("security_alert_enabled").notNull().default(true),
  quietHoursEnabled: boolean("quiet_hours_enabled").notNull().default(false),
  quietHoursStart: text("quiet_hours_start").notNull().default("22:00"),
  quietHoursEnd: text("quiet_hours_end").notNull().default("08:00"),
  frequency: text("frequency").notNull().default("immediate"),
  soundEnabled: boolean("sound_enabled").notNull().default(true),
  soundVolume: integer("sound_volume").notNull().default(70),
  desktopNotifications: boolean("desktop_notifications").notNull().default(true),
  emailDigestEnabled: boolean("email_digest_enabled").notNull().default(true),
  emailDigestFrequency: text("email_digest_frequency").notNull().default("daily"),
  createdAt: tz("created_at").notNull().defaultNow(),
  updatedAt: tz("updated_at").notNull().defaultNow(),
});

export const websocketSessions = pgTable("websocket_sessions", {
  id: uuid("id").primaryKey().defaultRandom(),
  userId: text("user_id").notNull(),
  instanceId: text("instance_id").notNull(),
  ip: text("ip"),
  userAgent: text("user_agent"),
  connectedAt: tz("connected_at").notNull().defaultNow(),
  disconnectedAt: tz("disconnected_at"),
  disconnectCode: integer("disconnect_code"),
  disconnectReason: text("disconnect_reason"),
});

export const analyticsEvents = pgTable("analytics_events", {
  id: bigint("id", { mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
  notificationId: uuid("notification_id").notNull(),
  userId: text("user_id").notNull(),
  eventType: text("event_type").notNull(),
  timestamp: tz("timestamp").notNull().defaultNow(),
  metadata: jsonb("metadata").$type<Record<string, unknown> | null>(),
});

export const emailDigests = pgTable("email_digests", {
  id: uuid("id").primaryKey().defaultRandom(),
  userId: text("user_id").notNull(),
  frequency: text("frequency").notNull(),
  status: text("status").notNull().default("pending"),
  scheduledFor: tz("scheduled_for").notNull(),
  windowStart: tz("window_start"),
  sentAt: tz("sent_at"),
  emailAddress: text("email_address").notNull(),
  subject: text("subject"),
  htmlContent: text("html_content"),
  textContent: text("text_content"),
  notificationCount: integer("notification_count").notNull().default(0),
  attempts: integer("attempts").notNull().default(0),
  nextAttemptAt: tz("next_attempt_at"),
  leaseUntil: tz("lease_until"),
  /** Instance holding the lease (migration 0004). */
  leasedBy: text("leased_by"),
  lastError: text("last_error"),
  messageId: text("message_id"),
  isTest: boolean("is_test").notNull().default(false),
  createdAt: tz("created_at").notNull().defaultNow(),
  updatedAt: tz("updated_at").notNull().defaultNow(),
});

export const notificationQueue = pgTable("notification_queue", {
  id: uuid("id").primaryKey().defaultRandom(),
  notificationId: uuid("notification_id").notNull(),
  userId: text("user_id").notNull(),
  channel: text("channel").notNull(),
  status: text("status").notNull().default("pending"),
  attempts: integer("attempts").notNull().default(0),
  maxAttempts: integer("max_attempts").notNull().default(5),
  nextRetryAt: tz("next_retry_at").notNull().defaultNow(),
  lockedUntil: tz("locked_until"),
  lockedBy: text("locked_by"),
  lastError: text("last_error"),
  payload: jsonb("payload").$type<Record<string, unknown> | null>(),
  sentAt: tz("sent_at"),
  createdAt: tz("created_at").notNull().defaultNow(),
  updatedAt: tz("updated_at").notNull().defaultNow(),
});

export const notificationTemplates = pgTable("notification_templates", {
  id: uuid("id").primaryKey().defaultRandom(),
  key: text("key").notNull().unique(),
  type: text("type").notNull(),
  priority: text("priority"),
  titleTemplate: text("title_template").notNull(),
  messageTemplate: text("message_template").notNull(),
  descriptionTemplate: text("description_template"),
  icon: text("icon"),
  actionUrlTemplate: text("action_url_template"),
  actionLabelTemplate: text("action_label_template"),
  createdAt: tz("created_at").notNull().defaultNow(),
  updatedAt: tz("updated_at").notNull().defaultNow(),
});

export const pushSubscriptions = pgTable("push_subscriptions", {
  id: uuid("id").primaryKey().defaultRandom(),
  userId: text("user_id").notNull(),
  endpoint: text("endpoint").notNull().unique(),
  p256dh: text("p256dh").notNull(),
  auth: text("auth").notNull(),
  userAgent: text("user_agent"),
  createdAt: tz("created_at").notNull().defaultNow(),
});

export type NotificationRow = typeof notifications.$inferSelect;
export type PreferencesRow = typeof notificationPreferences.$inferSelect;
export type UserRow = typeof users.$inferSelect;
export type EmailDigestRow = typeof emailDigests.$inferSelect;
export type QueueRow = typeof notificationQueue.$inferSelect;
export type TemplateRow = typeof notificationTemplates.$inferSelect;
