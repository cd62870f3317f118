/** A real `ws` client that records every message and lets a test await one. */
import WebSocket from "ws";
import type { ServerMessage } from "../../src/protocol/index.js";

type Of<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;

export interface TestSocket {
  messages: ServerMessage[];
  /** Resolves with the first message of `type` (already received or to come) matching `where`, and removes it from `messages`. */
  next<T extends ServerMessage["type"]>(type: T, where?: (m: Of<T>) => boolean, timeoutMs?: number): Promise<Of<T>>;
  send(m: unknown): void;
  close(): Promise<void>;
}

export async function connect(wsUrl: string, token: string): Promise<TestSocket> {
  const ws = new WebSocket(`${wsUrl}/ws?token=${encodeURIComponent(token)}`);
  const messages: ServerMessage[] = [];
  const waiters: { match: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void; from: number }[] = [];
  ws.on("message", (raw) => {
    const m = JSON.parse(raw.toString()) as ServerMessage;
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.match(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const socket: TestSocket = {
    messages,
    next<T extends ServerMessage["type"]>(type: T, where: (m: Of<T>) => boolean = () => true, timeoutMs = 10_000): Promise<Of<T>> {
      const match = (m: ServerMessage) => m.type === type && where(m as Of<T>);
      const found = messages.find(match);
      if (found) {
        messages.splice(messages.indexOf(found), 1);
        return Promise.resolve(found as Of<T>);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(messages)}`)), timeoutMs);
        waiters.push({
          match,
          from: messages.length,
          resolve: (m) => {
            clearTimeout(timer);
            messages.splice(messages.indexOf(m), 1);
            resolve(m as Of<T>);
          },
        });
      });
    },
    send: (m) => ws.send(JSON.stringify(m)),
    close: () =>
      new Promise<void>((resolve) => {
        if (ws.readyState === WebSocket.CLOSED) return resolve();
        ws.once("close", () => resolve());
        ws.close();
      }),
  };
  // Returned once the connection's first sync page has come: a notification created from then on is pushed
  // live. Before, a creation racing the page's read was carried by the page, and a test awaiting its live
  // frame waited in vain (a CI run on Node 24). The page stays in `messages` for tests that read it.
  await new Promise<void>((resolve, reject) => {
    const synced = () => messages.some((m) => m.type === "sync");
    if (synced()) return resolve();
    const timer = setTimeout(() => reject(new Error(`no sync page within 10000 ms of connecting; got ${JSON.stringify(messages)}`)), 10_000);
    const onMessage = () => {
      if (!synced()) return;
      clearTimeout(timer);
      ws.off("message", onMessage);
      resolve();
    };
    ws.on("message", onMessage);
  });
  return socket;
}
