import { useEffect, useRef, useState } from "react";
// Imported file by file rather than from the "herald/react" barrel, so the
// dashboard's chart library stays out of this page's bundle.
import { NotificationBell } from "../../src/react/NotificationBell.js";
import { ProviderNotificationCenter } from "../../src/react/ProviderNotificationCenter.js";
import { useProviderNotifications } from "../../src/react/useProviderNotifications.js";
import { describeToken } from "./token.js";

const CENTER_ID = "notification-center";

/**
 * `/`: the provider's bell and notification center, live over WebSocket.
 * The bell shows and hides the center (open at first: it is the page);
 * Escape inside the center hides it and puts focus back on the bell.
 */
export function CenterPage({ token, onSignOut }: { token: string; onSignOut(reason?: string): void }) {
  const inbox = useProviderNotifications({ token });
  const [open, setOpen] = useState(true);
  const bell = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (inbox.unauthorized) onSignOut("The server refused this token (expired or invalid). Sign in with a new one.");
  }, [inbox.unauthorized, onSignOut]);
  const who = describeToken(token).subject;
  const close = () => {
    setOpen(false);
    bell.current?.focus();
  };
  return (
    <>
      <div className="page-head">
        <p className="muted">{who ? `Signed in as ${who}` : "Signed in"}</p>
        <div className="page-actions">
          <NotificationBell ref={bell} count={inbox.unreadCount} open={open} controls={CENTER_ID} onClick={() => setOpen((o) => !o)} />
          <button type="button" className="link" onClick={() => onSignOut()}>
            Sign out
          </button>
        </div>
      </div>
      <ProviderNotificationCenter id={CENTER_ID} inbox={inbox} push={{ token }} open={open} onClose={close} />
    </>
  );
}
