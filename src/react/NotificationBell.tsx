import { BellIcon } from "./TypeIcon.js";

/** A bell button with the unread count as a badge (hidden at zero, "99+" beyond). */
export interface NotificationBellProps {
  count: number;
  onClick?: () => void;
  /** Whether the panel the bell toggles is open (for aria-expanded). */
  open?: boolean;
}

export function NotificationBell({ count, onClick, open }: NotificationBellProps) {
  const label = count === 0 ? "Notifications, none unread" : `Notifications, ${count} unread`;
  return (
    <button type="button" className="herald-bell" aria-label={label} aria-expanded={open} onClick={onClick} data-testid="notification-bell">
      <BellIcon size={22} />
      {count > 0 && (
        <span className="herald-badge" data-testid="unread-badge" data-count={count}>
          {count > 99 ? "99+" : count}
        </span>
      )}
    </button>
  );
}
