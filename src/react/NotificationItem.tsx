import { useId } from "react";
import type { NotificationDto } from "../protocol/index.js";
import { relativeTime, safeHref, typeLabel } from "./format.js";
import { TypeIcon } from "./TypeIcon.js";

export interface NotificationItemProps {
  notification: NotificationDto;
  now: number;
  onRead(id: string): void;
  onArchive(id: string): void;
  onRemove(id: string): void;
  onAction(n: NotificationDto): void;
}

/**
 * One notification: type icon, title, message, relative time, priority
 * styling and its actions. The actions are described by the title, so
 * "Mark read" heard while tabbing says which notification it marks.
 */
export function NotificationItem({ notification: n, now, onRead, onArchive, onRemove, onAction }: NotificationItemProps) {
  const titleId = useId();
  const href = safeHref(n.actionUrl);
  const classes = ["herald-item", `herald-priority-${n.priority}`, n.read ? "read" : "unread"].join(" ");
  return (
    <li className={classes} data-testid="notification" data-id={n.id} data-read={n.read}>
      <span className="herald-item-icon" title={typeLabel(n.type)}>
        <TypeIcon type={n.type} icon={n.icon} />
      </span>
      <div className="herald-item-body">
        <div className="herald-item-head">
          <strong className="herald-item-title" id={titleId}>{n.title}</strong>
          {(n.priority === "critical" || n.priority === "high") && <span className={`herald-chip herald-chip-${n.priority}`}>{n.priority}</span>}
        </div>
        <p className="herald-item-message">{n.message}</p>
        <div className="herald-item-meta">
          <time dateTime={n.createdAt} title={new Date(n.createdAt).toLocaleString()}>
            {relativeTime(n.createdAt, now)}
          </time>
          <span className="herald-item-type">{typeLabel(n.type)}</span>
        </div>
        <div className="herald-item-actions">
          {href && (
            <a className="herald-action-link" href={href} onClick={() => onAction(n)} aria-describedby={titleId} data-testid="action-link">
              {n.actionLabel ?? "Open"}
            </a>
          )}
          {!n.read && (
            <button type="button" onClick={() => onRead(n.id)} aria-describedby={titleId} data-testid="mark-read">
              Mark read
            </button>
          )}
          {!n.archived && (
            <button type="button" onClick={() => onArchive(n.id)} aria-describedby={titleId} data-testid="archive">
              Archive
            </button>
          )}
          <button type="button" className="herald-danger" onClick={() => onRemove(n.id)} aria-label={`Delete ${n.title}`}>
            Delete
          </button>
        </div>
      </div>
      {!n.read && <span className="herald-unread-dot" role="img" aria-label="unread" />}
    </li>
  );
}
