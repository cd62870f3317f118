import { useEffect } from "react";
// Imported file by file rather than from the "herald/react" barrel, so the
// dashboard's chart library stays out of this page's bundle.
import { NotificationBell } from "../../src/react/NotificationBell.js";
import { ProviderNotificationCenter } from "../../src/react/ProviderNotificationCenter.js";
import { useProviderNotifications } from "../../src/react/useProviderNotifications.js";
import { describeToken } from "./token.js";

/** `/`: the provider's bell and notification center, live over WebSocket. */
export function CenterPage({ token, onSignOut }: { token: string; onSignOut(reason?: string): void }) {
  const inbox = useProviderNotifications({ token });
  useEffect(() => {
    if (inbox.unauthorized) onSignOut("The server refused this token (expired or invalid). Sign in with a new one.");
  }, [inbox.unauthorized, onSignOut]);
  const who = describeToken(token).subject;
  const showUnread = () => {
    inbox.setFilter("unread");
    document.querySelector("[data-testid=notification-center]")?.scrollIntoView({ behavior: "smooth" });
  };
  return (
    <>
      <div className="page-head">
        <p className="muted">{who ? `Signed in as ${who}` : "Signed in"}</p>
        <div className="page-actions">
          <NotificationBell count={inbox.unreadCount} onClick={showUnread} />
          <button type="button" className="link" onClick={() => onSignOut()}>
            Sign out
          </button>
        </div>
      </div>
      <ProviderNotificationCenter inbox={inbox} push={{ token }} />
    </>
  );
}
