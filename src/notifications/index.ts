export { NotificationService } from "./service.js";
export type { BroadcastResult, FromTemplateOptions } from "./service.js";
export type { NotificationDeps } from "./deps.js";
export type { BroadcastBase, BroadcastRecipient, InboxActions, RealtimePublisher } from "./publisher.js";
export type { GetNotificationsOptions, NotificationPage, StateChange } from "./inbox.js";
export { MAX_PAGE, TOTAL_CAP } from "./inbox.js";
export { INBOX_COLUMNS } from "./sql.js";
export {
  DATA_MAX_BYTES,
  MESSAGE_MAX,
  TITLE_MAX,
  createFromTemplateSchema,
  createNotificationSchema,
  notificationContentSchema,
  notificationTypeSchema,
  parsedCreation,
} from "./input.js";
export type { BroadcastInput, CreateNotificationInput, NotificationContent, TemplateVariables } from "./input.js";
export { NotificationTemplates, renderTemplate, templateCreateSchema, templateKeySchema, templateUpdateSchema } from "./templates.js";
export type { NotificationTemplate } from "./templates.js";
export * from "./types.js";
export { NOTIFICATION_COLUMNS, type NotificationRow } from "../db/index.js";
