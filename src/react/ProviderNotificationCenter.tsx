/**
 * The provider's notification center: connection state, filters, mark all
 * read, archive all and the list. It renders the state of `useProviderNotifications()`,
 * passed in as `inbox`, so a bell elsewhere on the page shares it.
 *
 * A bell can show and hide it (`open`, `id` for the bell's aria-controls);
 * Escape inside it calls `onClose`, and the app returns focus to the bell.
 * New arrivals are announced to screen readers even while it is hidden.
 */
import type { KeyboardEvent } from "react";
import { ConnectionStatus } from "./ConnectionStatus.js";
import { NotificationAnnouncer } from "./NotificationAnnouncer.js";
import { NotificationFilters } from "./NotificationFilters.js";
import { NotificationItem } from "./NotificationItem.js";
import { PushToggle } from "./PushToggle.js";
import type { UsePushSubscriptionOptions } from "./usePushSubscription.js";
import type { ProviderNotifications } from "./useProviderNotifications.js";
import { useNow } from "./useNow.js";

export interface ProviderNotificationCenterProps {
  inbox: ProviderNotifications;
  title?: string;
  /** Shows the "Enable browser notifications" toggle, subscribing with this token. */
  push?: UsePushSubscriptionOptions;
  /** Whether the center is shown (default true); hidden, it still announces arrivals. */
  open?: boolean;
  /** Escape pressed inside the center. */
  onClose?: () => void;
  /** The section's id, for a bell's aria-controls. */
  id?: string;
}

const EMPTY: Record<string, string> = {
  unread: "You're all caught up.",
  all: "No notifications yet.",
  archived: "Nothing archived.",
};

export function ProviderNotificationCenter({ inbox, title = "Notifications", push, open = true, onClose, id: sectionId }: ProviderNotificationCenterProps) {
  const now = useNow();
  const { notifications, filter } = inbox;
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "Escape" && onClose) {
      e.stopPropagation();
      onClose();
    }
  };
  return (
    <>
      <NotificationAnnouncer notifications={notifications} ready={!inbox.loading} />
      <section id={sectionId} className="herald-center" aria-label={title} hidden={!open} onKeyDown={onKeyDown} data-testid="notification-center">
        <header className="herald-center-head">
          <h2>
            {title}
            {inbox.unreadCount > 0 && <span className="herald-count"> · {inbox.unreadCount} unread</span>}
          </h2>
          {push && <PushToggle {...push} />}
          <ConnectionStatus state={inbox.connection} />
        </header>
        <div className="herald-toolbar">
          <NotificationFilters value={filter} onChange={inbox.setFilter} />
          <div className="herald-bulk">
            <button type="button" onClick={() => void inbox.markAllRead()} disabled={inbox.unreadCount === 0} data-testid="mark-all-read">
              Mark all read
            </button>
            {/* Everything, not only what is listed: only the "all" view (every unarchived one) knows there is nothing to archive. */}
            <button type="button" onClick={() => void inbox.archiveAll()} disabled={inbox.filter === "all" && inbox.total === 0} data-testid="archive-all">
              Archive all
            </button>
          </div>
        </div>
        {inbox.error && (
          <p className="herald-error" role="alert">
            {inbox.error}
          </p>
        )}
        {notifications.length === 0 ? (
          <p className="herald-empty">{inbox.loading ? "Loading…" : EMPTY[filter]}</p>
        ) : (
          <ul className="herald-list">
            {notifications.map((n) => (
              <NotificationItem
                key={n.id}
                notification={n}
                now={now}
                onRead={(id) => void inbox.markRead(id)}
                onArchive={(id) => void inbox.archive(id)}
                onRemove={(id) => void inbox.remove(id)}
                onAction={inbox.trackClick}
              />
            ))}
          </ul>
        )}
        {/* Pages by the server's cursor (?before=), so a deep inbox costs what a first page costs. */}
        {inbox.hasMore && (
          <button type="button" className="herald-more" onClick={() => void inbox.loadMore()}>
            Load more{inbox.total > notifications.length && ` (${inbox.total - notifications.length}${inbox.totalCapped ? "+" : ""})`}
          </button>
        )}
      </section>
    </>
  );
}
