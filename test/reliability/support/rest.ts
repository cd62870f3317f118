/** Small fetch helpers for the battery (a JSON body, the status, and the problem when there is one). */
export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export async function call<T = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | Buffer | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined && !headers["content-type"]) headers["content-type"] = "application/json";
  const res = await fetch(`${baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body: body as BodyInit } : {}) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** True for an RFC 9457 problem body with the given status. */
export function isProblem(a: Answer, status?: number): boolean {
  const b = a.body as Record<string, unknown> | undefined;
  return (
    (status === undefined || a.status === status) &&
    (a.headers.get("content-type") ?? "").includes("application/problem+json") &&
    !!b &&
    typeof b.type === "string" &&
    typeof b.title === "string" &&
    b.status === a.status &&
    typeof b.detail === "string"
  );
}

/** Every notification id of a user, through the REST API, all pages. */
export async function allIds(baseUrl: string, token: string): Promise<string[]> {
  const ids: string[] = [];
  for (let offset = 0; ; offset += 100) {
    const a = await call<{ notifications: { id: string }[]; total: number }>(baseUrl, "GET", `/api/notifications?limit=100&offset=${offset}`, { token });
    if (a.status !== 200) throw new Error(`GET /api/notifications answered ${a.status}: ${a.text}`);
    ids.push(...a.body.notifications.map((n) => n.id));
    if (a.body.notifications.length < 100) return ids;
  }
}
