/**
 * Sign-in by URL fragment: `#token=<JWT>` is read once, kept in
 * sessionStorage for this tab, and removed from the address bar, so it never
 * reaches a server (fragments are not sent) nor stays in history.
 */
export type Page = "center" | "analytics";

const key = (page: Page) => `herald.token.${page}`;

export function takeTokenFromFragment(page: Page): void {
  const hash = window.location.hash.replace(/^#/, "");
  if (!hash) return;
  const params = new URLSearchParams(hash);
  const token = params.get("token");
  if (!token) return;
  sessionStorage.setItem(key(page), token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(history.state, "", `${window.location.pathname}${window.location.search}${rest ? `#${rest}` : ""}`);
}

export function storedToken(page: Page): string | null {
  return sessionStorage.getItem(key(page));
}

export function storeToken(page: Page, token: string): void {
  sessionStorage.setItem(key(page), token);
}

export function clearToken(page: Page): void {
  sessionStorage.removeItem(key(page));
}

/** The JWT's `sub` (and whether it is an admin token), for display only; the server verifies it. */
export function describeToken(token: string): { subject?: string; admin: boolean } {
  try {
    const part = token.split(".")[1];
    if (!part) return { admin: false };
    const json = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as { sub?: string; role?: string };
    return { ...(json.sub ? { subject: json.sub } : {}), admin: json.role === "admin" };
  } catch {
    return { admin: false };
  }
}
