/**
 * Browser push for the notification center: registers the service worker
 * (/sw.js), subscribes with Herald's VAPID key and stores the subscription
 * through POST /api/push/subscriptions; disabling unsubscribes and DELETEs it.
 */
import { useCallback, useEffect, useMemo, useState } from "react";
import { createApi } from "./api.js";
import { defaultBaseUrl } from "./useProviderNotifications.js";

export interface UsePushSubscriptionOptions {
  /** A provider JWT (`sub` = user id). */
  token: string;
  /** Herald's base URL; defaults to the page's origin. */
  url?: string;
  /** The service worker script; it must be on the page's origin (default /sw.js). */
  serviceWorkerUrl?: string;
}

/** unsupported: no service worker or PushManager (or not a secure context); denied: the user blocked notifications. */
export type PushState = "checking" | "unsupported" | "denied" | "off" | "on" | "working";

export interface PushSubscriptionState {
  state: PushState;
  error: string | null;
  enable(): Promise<void>;
  disable(): Promise<void>;
}

export function pushSupported(): boolean {
  return typeof window !== "undefined" && "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

export function usePushSubscription({ token, url, serviceWorkerUrl = "/sw.js" }: UsePushSubscriptionOptions): PushSubscriptionState {
  const api = useMemo(() => createApi({ baseUrl: url ?? defaultBaseUrl(), token }), [url, token]);
  const [state, setState] = useState<PushState>(() => (pushSupported() ? "checking" : "unsupported"));
  const [error, setError] = useState<string | null>(null);

  // On load: is this browser already subscribed (from an earlier visit)?
  useEffect(() => {
    if (!pushSupported()) return;
    let live = true;
    void (async () => {
      const reg = await navigator.serviceWorker.getRegistration(serviceWorkerUrl);
      const sub = await reg?.pushManager.getSubscription();
      if (!live) return;
      setState(sub ? "on" : Notification.permission === "denied" ? "denied" : "off");
    })().catch(() => live && setState("off"));
    return () => {
      live = false;
    };
  }, [serviceWorkerUrl]);

  const enable = useCallback(async () => {
    if (!pushSupported()) return;
    setState("working");
    setError(null);
    try {
      if ((await Notification.requestPermission()) !== "granted") {
        setState(Notification.permission === "denied" ? "denied" : "off");
        return;
      }
      const reg = await navigator.serviceWorker.register(serviceWorkerUrl);
      await navigator.serviceWorker.ready;
      const { publicKey } = await api.request<{ publicKey: string }>("GET", "/api/push/vapid-public-key");
      const sub =
        (await reg.pushManager.getSubscription()) ??
        (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(publicKey) }));
      try {
        await api.request("POST", "/api/push/subscriptions", sub.toJSON());
      } catch (err) {
        // Herald does not know this subscription: drop it so the browser and the server agree.
        await sub.unsubscribe().catch(() => undefined);
        throw err;
      }
      setState("on");
    } catch (err) {
      setError(describe(err));
      setState("off");
    }
  }, [api, serviceWorkerUrl]);

  const disable = useCallback(async () => {
    if (!pushSupported()) return;
    setState("working");
    setError(null);
    try {
      const reg = await navigator.serviceWorker.getRegistration(serviceWorkerUrl);
      const sub = await reg?.pushManager.getSubscription();
      if (sub) {
        // 404 means Herald already forgot it (e.g. expired); unsubscribing is still right.
        await api.request("DELETE", "/api/push/subscriptions", { endpoint: sub.endpoint }).catch((err: { status?: number }) => {
          if (err.status !== 404) throw err;
        });
        await sub.unsubscribe();
      }
      setState("off");
    } catch (err) {
      setError(describe(err));
      setState("on");
    }
  }, [api, serviceWorkerUrl]);

  return { state, error, enable, disable };
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string };
  // Chromium answers AbortError when it cannot register with its push service: no access to FCM,
  // or a profile without push (incognito and automated browsers: "Registration failed - permission denied").
  if (e.name === "AbortError") return `Browser notifications are unavailable: the browser could not register with its push service (${e.message ?? "aborted"}).`;
  if (e.name === "NotAllowedError") return "Browser notifications are blocked for this site.";
  return `Could not change browser notifications: ${e.message ?? String(err)}`;
}

/** The VAPID key comes base64url-encoded; PushManager wants the raw bytes. */
function base64UrlToBytes(value: string): Uint8Array<ArrayBuffer> {
  const b64 = value.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(value.length / 4) * 4, "=");
  const raw = atob(b64);
  const bytes = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}
