/** The user directory (the guide's library API: `upsert` and `get`; admin: `list`), erasure and deliverability. */
export { USER_PAGE_MAX, UserDirectory, existingUserIdSchema, timezoneCacheKey, userFieldsSchema, userIdSchema, userInputSchema } from "./directory.js";
export type { User, UserDirectoryDeps, UserInput, UserListOptions, UserPage } from "./directory.js";
export { UserErasure, eraseUserRows } from "./erasure.js";
export { lockDirectoryForRead } from "./directory-lock.js";
export type { ErasureResult, UserErasureDeps } from "./erasure.js";
export {
  DELIVERY_CHANNELS,
  UNDELIVERABLE_REASONS,
  deliverabilityOf,
  deliverabilitySchema,
  deliveryWarnings,
  deliveryWarningSchema,
  RecipientReader,
  readRecipient,
  recipientCacheKey,
  undeliverableReason,
} from "./deliverability.js";
export type { AddressedChannel, Deliverability, DeliveryChannel, DeliveryWarning, Recipient, UndeliverableReason } from "./deliverability.js";
