/**
 * herald/react: the provider inbox hook and drop-in components.
 *
 * @example
 * import { useProviderNotifications, NotificationBell, ProviderNotificationCenter } from "herald/react";
 * // Styles: src/react/styles.css (plain CSS, classes prefixed herald-).
 *
 * function Inbox({ token }: { token: string }) {
 *   const inbox = useProviderNotifications({ token });
 *   return (
 *     <>
 *       <NotificationBell count={inbox.unreadCount} />
 *       <ProviderNotificationCenter inbox={inbox} />
 *     </>
 *   );
 * }
 */
export { useProviderNotifications, toWebSocketUrl } from "./useProviderNotifications.js";
export type { ProviderNotifications, UseProviderNotificationsOptions, ListFilter, ConnectionState } from "./useProviderNotifications.js";
export { NotificationBell, type NotificationBellProps } from "./NotificationBell.js";
export { ProviderNotificationCenter, type ProviderNotificationCenterProps } from "./ProviderNotificationCenter.js";
export { NotificationItem } from "./NotificationItem.js";
export { ConnectionStatus } from "./ConnectionStatus.js";
export { NotificationAnnouncer, type NotificationAnnouncerProps } from "./NotificationAnnouncer.js";
export { SegmentedControl, type SegmentedOption } from "./SegmentedControl.js";
export { PushToggle } from "./PushToggle.js";
export { usePushSubscription, pushSupported } from "./usePushSubscription.js";
export type { UsePushSubscriptionOptions, PushState, PushSubscriptionState } from "./usePushSubscription.js";
export { AnalyticsDashboard, type AnalyticsDashboardProps } from "./AnalyticsDashboard.js";
export { useAnalytics } from "./useAnalytics.js";
export { createApi, HeraldApiError } from "./api.js";
export { relativeTime, typeLabel } from "./format.js";
export { TypeIcon, BellIcon } from "./TypeIcon.js";
