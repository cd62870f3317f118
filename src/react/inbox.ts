/** Pure list operations behind the hook: merge without duplicates, filters, live updates. */
import type { NotificationDto } from "../protocol/index.js";
import type { ListFilter } from "./api.js";

export type ConnectionState = "connecting" | "open" | "reconnecting" | "offline";

export function matchesFilter(n: Pick<NotificationDto, "read" | "archived">, filter: ListFilter): boolean {
  if (filter === "archived") return n.archived;
  if (filter === "unread") return !n.read && !n.archived;
  return !n.archived;
}

/** Newest first (by cursor `seq`, then time); a notification already present is replaced, never doubled. */
export function mergeNotifications(incoming: NotificationDto[], existing: NotificationDto[]): NotificationDto[] {
  const byId = new Map<string, NotificationDto>();
  for (const n of existing) byId.set(n.id, n);
  for (const n of incoming) byId.set(n.id, { ...byId.get(n.id), ...n });
  return [...byId.values()].sort(newestFirst);
}

function newestFirst(a: NotificationDto, b: NotificationDto): number {
  if (a.seq !== b.seq && Number.isFinite(a.seq) && Number.isFinite(b.seq)) return b.seq - a.seq;
  return b.createdAt.localeCompare(a.createdAt);
}

/**
 * The list after a fresh first page: the page's rows, plus what arrived live
 * since the request began (`arrived`), plus (when the page is not the whole
 * inbox) rows older than the page loaded by "load more". A row that was in
 * the page's range but is not in the page was deleted, archived or read away
 * meanwhile (on another device, while this one was offline): it goes.
 */
export function reconcileFirstPage(page: NotificationDto[], list: NotificationDto[], filter: ListFilter, complete: boolean, arrived: ReadonlySet<string>): NotificationDto[] {
  const oldest = page.reduce((min, n) => Math.min(min, n.seq), Infinity);
  const kept = list.filter((n) => arrived.has(n.id) || (!complete && n.seq < oldest));
  return mergeNotifications(page, kept.filter((n) => matchesFilter(n, filter)));
}

export function applyUpdate(
  list: NotificationDto[],
  u: { id: string; read: boolean; archived: boolean; deleted: boolean },
  filter: ListFilter,
): NotificationDto[] {
  if (u.deleted) return list.filter((n) => n.id !== u.id);
  return list.flatMap((n) => {
    if (n.id !== u.id) return [n];
    const next = { ...n, read: u.read, archived: u.archived };
    // Keep a just-read item visible in "unread" so it does not jump away under the pointer.
    if (filter === "unread" && !next.archived) return [next];
    return matchesFilter(next, filter) ? [next] : [];
  });
}

/** Maps the SDK's state names onto the four the UI shows. */
export function normalizeState(s: unknown): ConnectionState {
  const v = typeof s === "string" ? s : typeof s === "object" && s !== null && "state" in s ? String((s as { state: unknown }).state) : "";
  if (v === "open" || v === "connected" || v === "online") return "open";
  if (v === "reconnecting" || v === "backoff" || v === "waiting") return "reconnecting";
  if (v === "connecting") return "connecting";
  return "offline";
}
