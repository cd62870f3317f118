/**
 * Speaks new arrivals to screen readers: "New notification: <title>" in a
 * polite live region, critical ones in an assertive region. Both regions are
 * always in the page (a live region added together with its text is often
 * not announced) and visually hidden.
 *
 * What is new is read from the list: an unread notification with a higher
 * cursor `seq` than any listed before. While the list (re)loads (first load,
 * filter change, reconnect) the mark moves without speaking, so a page of old
 * notifications is not read out.
 */
import { useEffect, useRef, useState } from "react";
import type { NotificationDto } from "../protocol/index.js";

export interface NotificationAnnouncerProps {
  notifications: readonly NotificationDto[];
  /** False while the list is loading: nothing is announced then. */
  ready: boolean;
}

export function NotificationAnnouncer({ notifications, ready }: NotificationAnnouncerProps) {
  const [polite, setPolite] = useState("");
  const [assertive, setAssertive] = useState("");
  const highest = useRef<number | null>(null);
  const wasReady = useRef(false);

  useEffect(() => {
    const top = notifications.reduce((max, n) => Math.max(max, n.seq), Number.NEGATIVE_INFINITY);
    const mark = highest.current;
    highest.current = mark === null ? top : Math.max(mark, top);
    const speaking = ready && wasReady.current && mark !== null;
    wasReady.current = ready;
    if (!speaking) return;
    const fresh = notifications.filter((n) => n.seq > mark && !n.read);
    const critical = fresh.filter((n) => n.priority === "critical");
    const others = fresh.filter((n) => n.priority !== "critical");
    if (critical.length > 0) setAssertive(announcement(critical, "New critical notification"));
    if (others.length > 0) setPolite(announcement(others, "New notification"));
  }, [notifications, ready]);

  return (
    <div className="herald-sr-only">
      <div aria-live="polite" aria-atomic="true" data-testid="announce-polite">
        {polite}
      </div>
      <div aria-live="assertive" aria-atomic="true" data-testid="announce-assertive">
        {assertive}
      </div>
    </div>
  );
}

/** The newest first: one title, or a count and the newest title. */
function announcement(fresh: readonly NotificationDto[], what: string): string {
  const newest = fresh.reduce((a, b) => (b.seq > a.seq ? b : a));
  return fresh.length === 1 ? `${what}: ${newest.title}` : `${fresh.length} ${what.toLowerCase()}s, the latest: ${newest.title}`;
}
