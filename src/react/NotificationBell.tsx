import type { Ref } from "react";
import { BellIcon } from "./TypeIcon.js";

/** A bell button with the unread count as a badge (hidden at zero, "99+" beyond). */
export interface NotificationBellProps {
  count: number;
  onClick?: () => void;
  /** Whether the panel the bell toggles is open (for aria-expanded). */
  open?: boolean;
  /** The id of the panel the bell toggles (for aria-controls). */
  controls?: string;
  ref?: Ref<HTMLButtonElement>;
}

/**
 * The button's name comes from its content, "Notifications" and the badge's
 * own name ("3 unread"), so a screen reader hears the count the badge shows.
 */
export function NotificationBell({ count, onClick, open, controls, ref }: NotificationBellProps) {
  return (
    <button
      ref={ref}
      type="button"
      className="herald-bell"
      aria-expanded={open}
      aria-controls={controls}
      onClick={onClick}
      data-testid="notification-bell"
    >
      <BellIcon size={22} />
      <span className="herald-sr-only">Notifications</span>
      {count > 0 && (
        <span className="herald-badge" role="img" aria-label={`${count} unread`} data-testid="unread-badge" data-count={count}>
          {count > 99 ? "99+" : count}
        </span>
      )}
    </button>
  );
}
