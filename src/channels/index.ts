/**
 * Out-of-app channels (e-mail, browser push, SMS) and the delivery queue that
 * drives them: `enqueueOutOfApp` writes the rows in the caller's transaction,
 * `DeliveryWorker` sends them with retries, `OutOfAppDelivery` wires both
 * from the configuration.
 */
export {
  CHANNEL_NAMES,
  ChannelError,
  IN_APP_CHANNEL,
  QUEUED_CHANNELS,
  asChannelError,
  httpStatusError,
  permanent,
  retryable,
} from "./channel.js";
export type { Channel, ChannelErrorKind, ChannelJob, ChannelName, ChannelNotification, ChannelRecipient, OutOfAppChannelName } from "./channel.js";
export { EmailChannel } from "./email.js";
export type { EmailChannelOptions } from "./email.js";
export { PushChannel } from "./push.js";
export type { PushChannelOptions } from "./push.js";
export { deletePushSubscription, listPushSubscriptions, savePushSubscription } from "./push-subscriptions.js";
export type { PushSubscriptionInput, StoredPushSubscription } from "./push-subscriptions.js";
export { LogSmsProvider, SmsChannel, WebhookSmsProvider } from "./sms.js";
export type { SmsMessage, SmsProvider } from "./sms.js";
export { loadVapidKeys } from "./vapid.js";
export { isPublicAddress, refusedPushEndpoint } from "./safe-destination.js";
export type { VapidKeys } from "./vapid.js";
export { bundleKey, enqueueOutOfApp, singleSendRows } from "./router.js";
export { enqueueBroadcast } from "./broadcast-queue.js";
export { INSERT_QUEUE_ROWS, ON_QUEUE_CONFLICT } from "./queue-sql.js";
export type { BroadcastSend } from "./broadcast-queue.js";
export type { EnqueueOptions, EnqueueTarget, EnqueuedRow, OutOfAppDecision, QueuePayload } from "./router.js";
export { backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
export type { BackoffPolicy } from "./backoff.js";
export { DeliveryWorker } from "./worker.js";
export type { DeliveryWorkerOptions } from "./worker.js";
export { OutOfAppDelivery } from "./delivery.js";
export type { DeliveryDeps, DeliveryOverrides } from "./delivery.js";
export { listQueue, QUEUE_STATUSES } from "./admin.js";
export type { QueueListing, QueueStatus } from "./admin.js";
