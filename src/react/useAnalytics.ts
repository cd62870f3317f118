/**
 * Polls the dashboard's data every `pollMs` while the page is visible, so the
 * headline metrics move as events arrive without a reload.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { createApi } from "./api.js";
import { type DashboardData, type Interval, fetchDashboard } from "./analyticsData.js";

export interface UseAnalyticsOptions {
  token: string;
  url?: string;
  interval: Interval;
  pollMs?: number;
}

export function useAnalytics({ token, url, interval, pollMs = 5000 }: UseAnalyticsOptions) {
  const baseUrl = url ?? (typeof window === "undefined" ? "" : window.location.origin);
  const api = useMemo(() => createApi({ baseUrl, token }), [baseUrl, token]);
  const [data, setData] = useState<DashboardData | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [updatedAt, setUpdatedAt] = useState<Date | null>(null);
  // Only the latest request may write: a slow answer for the previous view is dropped.
  const latest = useRef(0);

  const refresh = useCallback(async () => {
    const id = ++latest.current;
    try {
      const next = await fetchDashboard(api, interval);
      if (id !== latest.current) return;
      setData(next);
      setUpdatedAt(new Date());
      setError(null);
    } catch (err) {
      if (id === latest.current) setError((err as Error).message);
    }
  }, [api, interval]);

  useEffect(() => {
    setData(null);
    void refresh();
    const t = setInterval(() => {
      if (typeof document === "undefined" || document.visibilityState === "visible") void refresh();
    }, pollMs);
    return () => clearInterval(t);
  }, [refresh, pollMs]);

  return { api, data, error, updatedAt, refresh };
}
