/**
 * The JSON bodies the REST tests read, typed as the server sends them
 * (src/http/routes), so a test names what it expects instead of reading `any`.
 */
import type { Problem } from "../../src/errors/index.js";
import type { BroadcastResult, NotificationPage } from "../../src/notifications/index.js";
import type { NotificationPreferences } from "../../src/preferences/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";

export type { BroadcastResult, NotificationDto, NotificationPage, NotificationPreferences, Problem };

/** `POST /api/notifications` (201, or 200 with `notification: null` and a reason when nothing was stored). */
export interface Created {
  notification: NotificationDto;
}

/** `GET /api/notifications`: a page plus the user's unread count. */
export interface Listed extends NotificationPage {
  unreadCount: number;
}
