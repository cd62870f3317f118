/**
 * The provider's notification center: connection state, filters, mark all
 * read and the list. It renders the state of `useProviderNotifications()`,
 * passed in as `inbox`, so a bell elsewhere on the page shares it.
 */
import { ConnectionStatus } from "./ConnectionStatus.js";
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
}

const EMPTY: Record<string, string> = {
  unread: "You're all caught up.",
  all: "No notifications yet.",
  archived: "Nothing archived.",
};

export function ProviderNotificationCenter({ inbox, title = "Notifications", push }: ProviderNotificationCenterProps) {
  const now = useNow();
  const { notifications, filter } = inbox;
  return (
    <section className="herald-center" aria-label={title} data-testid="notification-center">
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
        <button type="button" onClick={() => void inbox.markAllRead()} disabled={inbox.unreadCount === 0} data-testid="mark-all-read">
          Mark all read
        </button>
      </div>
      {inbox.error && (
        <p className="herald-error" role="alert">
          {inbox.error}
        </p>
      )}
      {notifications.length === 0 ? (
        <p className="herald-empty">{inbox.loading ? "Loading…" : EMPTY[filter]}</p>
      ) : (
        <ul className="herald-list" aria-live="polite">
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
      {inbox.total > notifications.length && (
        <button type="button" className="herald-more" onClick={() => void inbox.loadMore()}>
          Load more ({inbox.total - notifications.length})
        </button>
      )}
    </section>
  );
}
