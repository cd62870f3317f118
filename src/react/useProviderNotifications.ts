/**
 * The guide's `useProviderNotifications()`: the provider's inbox as React
 * state. The list comes from REST (per filter, paged); live changes come
 * from the SDK's WebSocket client (herald/client), which reconnects with
 * backoff, resumes from its device cursor and drops duplicates, so a
 * notification created while the page was offline shows up once after the
 * reconnect (even if another device acknowledged it). Each reconnect also
 * reloads the first page, so reads, archives and deletions made elsewhere
 * meanwhile show too.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { HeraldClient } from "../client/index.js";
import { CloseCodes, type NotificationDto } from "../protocol/index.js";
import { HeraldApiError, type ListFilter, clientMetadata, createApi } from "./api.js";
import { type ConnectionState, applyUpdate, matchesFilter, mergeNotifications, normalizeState, reconcileFirstPage } from "./inbox.js";

export type { ConnectionState } from "./inbox.js";
export type { ListFilter } from "./api.js";

export interface UseProviderNotificationsOptions {
  /** A provider JWT (`sub` = user id). */
  token: string;
  /** Herald's base URL (http(s)://host:port, or its ws(s):// URL); defaults to the page's origin. */
  url?: string;
  /** WebSocket URL; defaults to `url` with ws(s):// and the /ws path. */
  wsUrl?: string;
  /** Which part of the inbox to list (default "all": everything not archived). */
  filter?: ListFilter;
  /** Page size for the REST list (default 30). */
  pageSize?: number;
}

export interface ProviderNotifications {
  notifications: NotificationDto[];
  unreadCount: number;
  /** How many notifications match the filter on the server (a lower bound when `totalCapped`). */
  total: number;
  /** The server stopped counting at its cap (a type filter on a large inbox): `total` is "at least". */
  totalCapped: boolean;
  /** Whether `loadMore()` can bring older notifications (the server gave a cursor). */
  hasMore: boolean;
  filter: ListFilter;
  setFilter(filter: ListFilter): void;
  connection: ConnectionState;
  loading: boolean;
  error: string | null;
  /** The server refused the token (expired or revoked): the app should ask for a new one. */
  unauthorized: boolean;
  /** Puts a notification into the list (deduplicated by id), e.g. one the app just created. */
  addNotification(notification: NotificationDto): void;
  markRead(id: string): Promise<void>;
  markAllRead(): Promise<void>;
  /** Archives every notification of the user (the server moves its archive watermark), then reloads the first page. */
  archiveAll(): Promise<void>;
  archive(id: string): Promise<void>;
  remove(id: string): Promise<void>;
  /** Records a `clicked` event for the notification's action link (and marks it read). */
  trackClick(notification: NotificationDto): void;
  loadMore(): Promise<void>;
  refresh(): Promise<void>;
}

export function defaultBaseUrl(): string {
  return typeof window === "undefined" ? "" : window.location.origin;
}

export function toWebSocketUrl(base: string): string {
  const u = new URL(base || defaultBaseUrl());
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.pathname = "/ws";
  u.search = "";
  u.hash = "";
  return u.toString();
}

export function useProviderNotifications(options: UseProviderNotificationsOptions): ProviderNotifications {
  const { token, pageSize = 30 } = options;
  // `url` may name the server either way: http(s):// for REST, ws(s):// for the socket.
  const given = options.url ?? defaultBaseUrl();
  const isWs = /^wss?:/i.test(given);
  const baseUrl = isWs ? given.replace(/^ws/i, "http").replace(/\/ws\/?$/, "") : given;
  const wsUrl = options.wsUrl ?? (isWs ? given : toWebSocketUrl(baseUrl));
  const api = useMemo(() => createApi({ baseUrl, token }), [baseUrl, token]);

  const [filter, setFilter] = useState<ListFilter>(options.filter ?? "all");
  const [notifications, setNotifications] = useState<NotificationDto[]>([]);
  const [total, setTotal] = useState(0);
  const [totalCapped, setTotalCapped] = useState(false);
  // The server's cursor for the next older page (null: none); loadMore pages by it, not by offset,
  // so a deep page costs the same as the first and live arrivals do not shift it.
  const [next, setNext] = useState<number | null>(null);
  const nextRef = useRef<number | null>(null);
  const [unreadCount, setUnreadCount] = useState(0);
  const [connection, setConnection] = useState<ConnectionState>("connecting");
  const [loading, setLoading] = useState(true);
  const [error, setErrorMessage] = useState<string | null>(null);
  const [unauthorized, setUnauthorized] = useState(false);
  const setError = useCallback((err: unknown) => {
    if (err === null) return setErrorMessage(null);
    if (err instanceof HeraldApiError && err.status === 401) setUnauthorized(true);
    setErrorMessage(err instanceof Error ? err.message : String(err));
  }, []);
  const clientRef = useRef<HeraldClient | null>(null);
  // The live handlers below outlive renders; they read the current filter here.
  const filterRef = useRef(filter);
  filterRef.current = filter;
  const loadGeneration = useRef(0);
  // Every id listed since the last (re)load, updated synchronously with the
  // state updates, so a REST page and a WebSocket replay of the same
  // notification are counted once whichever lands first.
  const knownIds = useRef(new Set<string>());
  // Ids that arrived live since the current first-page request began: a reload keeps them.
  const arrivedIds = useRef(new Set<string>());

  // The first page for `listFilter`; a later load (or filter) supersedes it.
  const loadFirstPage = useCallback(async (listFilter: ListFilter) => {
    const generation = ++loadGeneration.current;
    arrivedIds.current = new Set();
    setLoading(true);
    try {
      const page = await api.listNotifications(listFilter, pageSize, 0);
      if (generation !== loadGeneration.current) return;
      for (const n of page.notifications) knownIds.current.add(n.id);
      // Live arrivals during the request are kept; rows the page no longer holds are dropped.
      const arrived = arrivedIds.current;
      const complete = page.notifications.length < pageSize;
      setNotifications((live) => reconcileFirstPage(page.notifications, live, filterRef.current, complete, arrived));
      setTotal(page.total);
      setTotalCapped(page.totalCapped === true);
      nextRef.current = page.next;
      setNext(page.next);
      setUnreadCount(page.unreadCount);
      setError(null);
    } catch (err) {
      if (generation === loadGeneration.current) setError(err);
    } finally {
      if (generation === loadGeneration.current) setLoading(false);
    }
  }, [api, pageSize, setError]);
  // Reloads (reconnects, resets, refresh()) list the current filter.
  const load = useCallback(() => loadFirstPage(filterRef.current), [loadFirstPage]);

  // A new filter (or API) starts the list afresh.
  useEffect(() => {
    knownIds.current.clear();
    setNotifications([]);
    nextRef.current = null;
    setNext(null);
    void loadFirstPage(filter);
  }, [loadFirstPage, filter]);

  useEffect(() => {
    const client = new HeraldClient({ url: wsUrl, token });
    let wasOpen = false;
    clientRef.current = client;
    const offs = [
      // Live and replayed (after a reconnect) alike; the SDK emits each id once.
      client.on("notification", (n, _presentation, meta) => {
        const known = knownIds.current.has(n.id);
        // The server counts on connect (replayed ones included) and after reads;
        // a live arrival is counted here until the next snapshot.
        if (!known && !meta?.replayed && !n.read && !n.archived) setUnreadCount((c) => c + 1);
        if (known || !matchesFilter(n, filterRef.current)) return;
        knownIds.current.add(n.id);
        arrivedIds.current.add(n.id);
        setNotifications((list) => mergeNotifications([n], list));
        setTotal((t) => t + 1);
      }),
      client.on("updated", (u) =>
        setNotifications((list) => applyUpdate(list, u, filterRef.current)),
      ),
      client.on("unread_count", (count: number) => setUnreadCount(count)),
      client.on("state", (s) => {
        setConnection(normalizeState(s));
        // Back after a drop: what changed meanwhile (reads, archives, deletions elsewhere) comes from a fresh first page.
        if (s === "open" && wasOpen) void load();
        if (s === "open") wasOpen = true;
      }),
      // 4001: the token expired while connected; retrying with it cannot succeed.
      client.on("disconnect", ({ code }) => code === CloseCodes.tokenExpired && setUnauthorized(true)),
      // The server could not replay everything: the list is reloaded through REST.
      client.on("reset", () => void load()),
    ];
    client.connect();
    return () => {
      for (const off of offs) if (typeof off === "function") off();
      client.close();
      clientRef.current = null;
    };
  }, [wsUrl, token, load]);

  const patchLocal = useCallback((id: string, patch: Partial<NotificationDto>) => {
    setNotifications((list) => list.map((n) => (n.id === id ? { ...n, ...patch } : n)));
  }, []);

  const markRead = useCallback(
    async (id: string) => {
      const target = notificationsRef(notifications, id);
      if (target && !target.read) {
        patchLocal(id, { read: true });
        setUnreadCount((c) => Math.max(0, c - 1));
      }
      await run(setError, () => api.update(id, { read: true }));
    },
    [api, notifications, patchLocal, setError],
  );

  const markAllRead = useCallback(async () => {
    setNotifications((list) => (filterRef.current === "unread" ? [] : list.map((n) => ({ ...n, read: true }))));
    setUnreadCount(0);
    await run(setError, () => api.readAll());
  }, [api, setError]);

  const archiveAll = useCallback(async () => {
    // Outside "archived" the list empties at once; the server's first page then brings totals and the cursor
    // (in "archived" it now holds everything), and undoes this if the request failed.
    if (filterRef.current !== "archived") {
      setNotifications([]);
      setTotal(0);
      nextRef.current = null;
      setNext(null);
    }
    setUnreadCount(0);
    await run(setError, () => api.archiveAll());
    await load();
  }, [api, load, setError]);

  const archive = useCallback(
    async (id: string) => {
      const target = notificationsRef(notifications, id);
      setNotifications((list) => applyUpdate(list, { id, read: target?.read ?? true, archived: true, deleted: false }, filterRef.current));
      if (target && !target.read) setUnreadCount((c) => Math.max(0, c - 1));
      await run(setError, () => api.update(id, { archived: true }));
    },
    [api, notifications, setError],
  );

  const remove = useCallback(
    async (id: string) => {
      const target = notificationsRef(notifications, id);
      setNotifications((list) => list.filter((n) => n.id !== id));
      setTotal((t) => Math.max(0, t - 1));
      if (target && !target.read && !target.archived) setUnreadCount((c) => Math.max(0, c - 1));
      await run(setError, () => api.remove(id));
    },
    [api, notifications, setError],
  );

  const trackClick = useCallback(
    (n: NotificationDto) => {
      void api.trackClick(n.id, { ...clientMetadata(), actionUrl: n.actionUrl }).catch(() => undefined);
      if (!n.read) void markRead(n.id);
    },
    [api, markRead],
  );

  const loadMore = useCallback(async () => {
    const before = nextRef.current;
    if (before === null) return;
    await run(setError, async () => {
      const page = await api.listNotifications(filterRef.current, pageSize, 0, before);
      // A reload or another loadMore moved the cursor meanwhile: this page is stale.
      if (nextRef.current !== before) return;
      for (const n of page.notifications) knownIds.current.add(n.id);
      setNotifications((list) => mergeNotifications(list, page.notifications));
      setTotal(page.total);
      setTotalCapped(page.totalCapped === true);
      nextRef.current = page.next;
      setNext(page.next);
    });
  }, [api, pageSize, setError]);

  const addNotification = useCallback((n: NotificationDto) => {
    if (!matchesFilter(n, filterRef.current)) return;
    if (!knownIds.current.has(n.id)) setTotal((t) => t + 1);
    knownIds.current.add(n.id);
    setNotifications((list) => mergeNotifications([n], list));
  }, []);

  return {
    notifications,
    unreadCount,
    total,
    totalCapped,
    hasMore: next !== null,
    filter,
    setFilter,
    connection,
    loading,
    error,
    unauthorized,
    addNotification,
    markRead,
    markAllRead,
    archiveAll,
    archive,
    remove,
    trackClick,
    loadMore,
    refresh: load,
  };
}

function notificationsRef(list: NotificationDto[], id: string): NotificationDto | undefined {
  return list.find((n) => n.id === id);
}

async function run(setError: (e: unknown) => void, fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    setError(err);
  }
}
