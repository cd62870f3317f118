/** A tiny fetch wrapper for REST tests against a running test Herald. */
import type { Problem } from "../support/bodies.js";
import type { TestHerald } from "../support/herald.js";

export interface ApiResponse<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Sent as is, with a JSON content type (malformed JSON tests). */
  raw?: string;
  headers?: Record<string, string>;
}

export function api(h: TestHerald) {
  return async <T = unknown>(method: string, path: string, options: CallOptions = {}): Promise<ApiResponse<T>> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${h.baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
}

/** Every table a bad request could have touched, counted. */
export async function rowCounts(h: TestHerald): Promise<Record<string, number>> {
  const [r] = await h.database.query<Record<string, number>>(
    `SELECT (SELECT count(*)::int FROM notifications) AS notifications,
            (SELECT count(*)::int FROM notification_queue) AS queue,
            (SELECT count(*)::int FROM notification_preferences) AS preferences,
            (SELECT count(*)::int FROM users) AS users,
            (SELECT count(*)::int FROM notification_templates) AS templates`,
  );
  return r!;
}

export function expectProblem(res: ApiResponse, status: number, code: string): void {
  const body = res.body as Partial<Problem> | undefined;
  if (res.status !== status || body?.code !== code || res.headers.get("content-type")?.includes("application/problem+json") !== true) {
    throw new Error(`expected ${status} ${code} problem, got ${res.status} ${res.headers.get("content-type")} ${JSON.stringify(res.body)}`);
  }
  for (const k of ["type", "title", "status", "detail"]) if (!(k in body)) throw new Error(`problem body lacks ${k}`);
}
