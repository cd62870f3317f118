/**
 * The HTTP side of a WebSocket upgrade: which paths are ours, where the token
 * is, and how a refusal is written (a plain HTTP response before any
 * WebSocket frame, so clients see 401 and never an open socket).
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { Problem } from "../errors/index.js";
import { isDeviceId } from "./client-messages.js";

export const WS_PATHS: ReadonlySet<string> = new Set(["/", "/ws"]);

/** The sub-protocol the SDK offers beside its token; echoed back so browsers accept the handshake. */
export const HERALD_PROTOCOL = "herald.v1";

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers["sec-websocket-protocol"];
  if (typeof header !== "string") return [];
  return header
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * The token from `?token=`, else from Sec-WebSocket-Protocol: an entry
 * `bearer.<jwt>` or the bare JWT (browsers cannot set Authorization on a
 * WebSocket). Also `?cursor=` to resume and `?device=` (the client's stable
 * device id, for its per-device cursor); `device` is false when malformed.
 */
export function readHandshake(req: IncomingMessage): { token: string | undefined; cursor: number; device: string | undefined | false } {
  const url = new URL(req.url ?? "/", "http://localhost");
  let token = url.searchParams.get("token") ?? undefined;
  if (!token) {
    for (const p of offeredProtocols(req)) {
      if (p.startsWith("bearer.")) token = p.slice("bearer.".length);
      else if (JWT_SHAPE.test(p)) token = p;
      if (token) break;
    }
  }
  const rawCursor = Number(url.searchParams.get("cursor") ?? "0");
  const cursor = Number.isSafeInteger(rawCursor) && rawCursor > 0 ? rawCursor : 0;
  const rawDevice = url.searchParams.get("device");
  const device = rawDevice === null ? undefined : isDeviceId(rawDevice) ? rawDevice : false;
  return { token: token || undefined, cursor, device };
}

/**
 * ws `handleProtocols`: `herald.v1` when offered, otherwise none. Never an
 * offered entry: it may be the token, and the 101 answer (proxy logs,
 * dev tools) would carry it.
 */
export function chooseProtocol(protocols: Set<string>): string | false {
  return protocols.has(HERALD_PROTOCOL) ? HERALD_PROTOCOL : false;
}

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable" };

/** Writes a complete HTTP error response on the raw socket and ends it. */
export function refuseUpgrade(socket: Duplex, status: 400 | 401 | 403 | 429 | 503, code: string, detail: string): void {
  const body = { type: "about:blank", title: STATUS_TEXT[status] ?? "Error", status, code, detail };
  writeRefusal(socket, body, [
    ...(status === 429 ? ["Retry-After: 1"] : []),
    ...(status === 401 ? [`WWW-Authenticate: Bearer error="invalid_token", error_description="${detail.replace(/"/g, "'")}"`] : []),
  ]);
}

/** Refuses with the REST API's problem body (src/errors), e.g. the address's spent failed-authentication budget. */
export function refuseUpgradeWithProblem(socket: Duplex, problem: Problem, headers: Record<string, string | number> = {}): void {
  writeRefusal(socket, problem, Object.entries(headers).map(([k, v]) => `${k}: ${v}`));
}

function writeRefusal(socket: Duplex, problem: { status: number; title: string }, extraHeaders: string[]): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(problem);
  const headers = [
    `HTTP/1.1 ${problem.status} ${STATUS_TEXT[problem.status] ?? problem.title}`,
    "Connection: close",
    "Content-Type: application/problem+json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...extraHeaders,
  ];
  socket.end(`${headers.join("\r\n")}\r\n\r\n${body}`);
  socket.once("finish", () => socket.destroy());
}
