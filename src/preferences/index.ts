/** Preferences of the guide and the delivery rules (docs/delivery.md). */
export { PREFERENCE_SELECT, PreferencesService, PREFERENCES_TTL_SECONDS, rowToPreferences } from "./service.js";
export type { PreferencesDeps } from "./service.js";
export {
  DEFAULT_PREFERENCES,
  DIGEST_FREQUENCIES,
  EMAIL_IMMEDIATE_MODES,
  PREFERENCE_COLUMNS,
  FREQUENCIES,
  TYPE_TOGGLES,
  defaultPreferences,
  preferencesSchema,
  preferencesUpdateSchema,
  typeToggleOf,
} from "./types.js";
export type { DigestFrequency, EmailImmediate, Frequency, NotificationPreferences, PreferenceFields, PreferencesUpdate } from "./types.js";
export { DEFAULT_EMAIL_UNSEEN_DELAY_MS, OUT_OF_APP_CHANNELS, decideDelivery, inQuietHours, isCritical } from "./delivery-rules.js";
export type { ChannelPlan, DeliveryDecision, DeliveryInput, DeliveryRuleOptions, OutOfAppChannel } from "./delivery-rules.js";
