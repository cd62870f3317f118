/**
 * The small REST client the components use: bearer-token fetch against a
 * Herald base URL, with problem+json bodies turned into readable errors.
 * Browser-only (fetch); the WebSocket side is the SDK in herald/client.
 */
import type { NotificationDto } from "../protocol/index.js";

export class HeraldApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "HeraldApiError";
  }
}

export interface ApiOptions {
  /** Herald base URL (http or https); "" means same origin. */
  baseUrl: string;
  token: string;
}

export type ListFilter = "unread" | "all" | "archived";

export interface NotificationPage {
  notifications: NotificationDto[];
  /** Exact, except with a type filter past the server's cap (`totalCapped`). */
  total: number;
  totalCapped?: boolean;
  /** The cursor of the next (older) page, or null after the last one. */
  next: number | null;
  unreadCount: number;
}

export function createApi({ baseUrl, token }: ApiOptions) {
  const root = baseUrl.replace(/\/$/, "");

  async function request<T>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
    const res = await fetch(`${root}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...init,
    });
    if (!res.ok) throw await toError(res);
    if (res.status === 204) return undefined as T;
    const type = res.headers.get("content-type") ?? "";
    return (type.includes("json") ? await res.json() : await res.text()) as T;
  }

  return {
    request,
    /** A page of the inbox, newest first: after `offset` rows, or (cheap at any depth) older than the `before` cursor (a page's `next`). */
    listNotifications(filter: ListFilter, limit: number, offset = 0, before?: number): Promise<NotificationPage> {
      const q = new URLSearchParams({ limit: String(limit), offset: String(offset) });
      if (before !== undefined) q.set("before", String(before));
      if (filter === "archived") q.set("archived", "true");
      else q.set("archived", "false");
      if (filter === "unread") q.set("read", "false");
      return request("GET", `/api/notifications?${q}`);
    },
    unreadCount: () => request<{ count?: number; unreadCount?: number }>("GET", "/api/notifications/unread-count"),
    update: (id: string, patch: { read?: boolean; archived?: boolean }) =>
      request<unknown>("PATCH", `/api/notifications/${encodeURIComponent(id)}`, patch),
    readAll: () => request<unknown>("POST", "/api/notifications/read-all", {}),
    archiveAll: () => request<unknown>("POST", "/api/notifications/archive-all", {}),
    remove: (id: string) => request<unknown>("DELETE", `/api/notifications/${encodeURIComponent(id)}`),
    /** keepalive: the click usually navigates away before the response arrives. */
    trackClick: (notificationId: string, metadata: Record<string, unknown>) =>
      request<unknown>("POST", "/api/analytics/events", { notificationId, eventType: "clicked", metadata }, { keepalive: true }),
    /** Fetches a file with the bearer token (links cannot carry it) as a Blob. */
    async download(path: string): Promise<Blob> {
      const res = await fetch(`${root}${path}`, { headers: { authorization: `Bearer ${token}` } });
      if (!res.ok) throw await toError(res);
      return res.blob();
    },
  };
}

export type HeraldApi = ReturnType<typeof createApi>;

async function toError(res: Response): Promise<HeraldApiError> {
  try {
    const body = (await res.json()) as { detail?: string; title?: string; code?: string };
    return new HeraldApiError(res.status, body.detail ?? body.title ?? res.statusText, body.code);
  } catch {
    return new HeraldApiError(res.status, `${res.status} ${res.statusText}`);
  }
}

/** Device and browser metadata for click events, as the guide's events carry. */
export function clientMetadata(): Record<string, unknown> {
  if (typeof navigator === "undefined") return {};
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "edge" : /Chrome\//.test(ua) ? "chrome" : /Firefox\//.test(ua) ? "firefox" : /Safari\//.test(ua) ? "safari" : "other";
  const device = /Mobi|Android|iPhone/.test(ua) ? "mobile" : "desktop";
  return { browser, device, source: "notification_center" };
}
