/**
 * The HTTP side of a WebSocket upgrade: which paths are ours, where the token
 * is, and how a refusal is written (a plain HTTP response before any
 * WebSocket frame, so clients see 401 and never an open socket). A refusal
 * is the REST API's: the same RFC 9457 problem body (src/errors), codes and
 * Content-Type. docs/websocket.md describes all of it for clients.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { tokenFromHeaders } from "../auth/index.js";
import { type ErrorCode, type Problem, problem } from "../errors/index.js";
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
 * The token, from the first of these that carries one:
 * 1. `?token=`;
 * 2. `Authorization: Bearer <jwt>`, parsed as REST parses it (Node clients,
 *    proxies; browsers cannot set it on a WebSocket);
 * 3. Sec-WebSocket-Protocol: an entry `bearer.<jwt>` or the bare JWT (what
 *    browsers can send; the SDK's default).
 * Also `?cursor=` to resume and `?device=` (the client's stable device id,
 * for its per-device cursor); `device` is false when malformed.
 */
export function readHandshake(req: IncomingMessage): { token: string | undefined; cursor: number; device: string | undefined | false } {
  const url = new URL(req.url ?? "/", "http://localhost");
  let token = url.searchParams.get("token") || undefined;
  // Only Authorization: an `x-api-key` (admin) is refused on sockets anyway.
  token ??= tokenFromHeaders({ authorization: req.headers.authorization });
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

export type RefusalStatus = 400 | 401 | 403 | 429 | 503;

/** The catalogue code (src/errors) REST answers with each refusal status. */
const CODE_OF_STATUS = {
  400: "HERALD_VALIDATION",
  401: "HERALD_UNAUTHENTICATED",
  403: "HERALD_FORBIDDEN",
  429: "HERALD_RATE_LIMITED",
  503: "HERALD_UNAVAILABLE",
} as const satisfies Record<RefusalStatus, ErrorCode>;

/**
 * Writes a complete HTTP error response on the raw socket and ends it: the REST API's problem body for
 * `status` (code HERALD_UNAUTHENTICATED for 401...) with `detail`, plus WWW-Authenticate on a 401 and
 * Retry-After on a 429 or 503. `_reason` ("unauthenticated", "invalid_device", "shutting_down"...) names
 * the refusal at the call site only: the body carries the catalogue's code, as REST's does.
 */
export function refuseUpgrade(socket: Duplex, status: RefusalStatus, _reason: string, detail: string): void {
  writeRefusal(socket, problem(CODE_OF_STATUS[status], detail), [
    ...(status === 429 ? ["Retry-After: 1"] : []),
    ...(status === 503 ? ["Retry-After: 2"] : []),
    ...(status === 401 ? [`WWW-Authenticate: Bearer error="invalid_token", error_description="${headerText(detail)}"`] : []),
  ]);
}

/** A detail as a quoted-string's content: no quote, backslash or control character (CR/LF would split the header). */
function headerText(detail: string): string {
  let text = "";
  for (let i = 0; i < detail.length; i++) {
    const c = detail.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) text += "'";
    else if (c < 0x20 || c === 0x7f) text += " ";
    else text += detail[i];
  }
  return text;
}

/** Refuses with the REST API's problem body (src/errors), e.g. the address's spent failed-authentication budget. */
export function refuseUpgradeWithProblem(socket: Duplex, body: Problem, headers: Record<string, string | number> = {}): void {
  writeRefusal(socket, body, Object.entries(headers).map(([k, v]) => `${k}: ${v}`));
}

function writeRefusal(socket: Duplex, refusal: Problem, extraHeaders: string[]): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(refusal);
  const headers = [
    `HTTP/1.1 ${refusal.status} ${STATUS_TEXT[refusal.status] ?? refusal.title}`,
    "Connection: close",
    // What REST (Fastify) sends with its problem bodies.
    "Content-Type: application/problem+json; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...extraHeaders,
  ];
  socket.end(`${headers.join("\r\n")}\r\n\r\n${body}`);
  socket.once("finish", () => socket.destroy());
}
