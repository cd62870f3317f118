/** A real `ws` client that records every message and lets a test await one. */
import WebSocket from "ws";

export interface TestSocket {
  messages: any[];
  /** Resolves with the first message (already received or to come) matching `match`. */
  next(match: (m: any) => boolean, timeoutMs?: number): Promise<any>;
  send(m: unknown): void;
  close(): Promise<void>;
}

export async function connect(wsUrl: string, token: string): Promise<TestSocket> {
  const ws = new WebSocket(`${wsUrl}/ws?token=${encodeURIComponent(token)}`);
  const messages: any[] = [];
  const waiters: { match: (m: any) => boolean; resolve: (m: any) => void; from: number }[] = [];
  ws.on("message", (raw) => {
    const m = JSON.parse(raw.toString());
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
  return {
    messages,
    next(match, timeoutMs = 10_000) {
      const found = messages.find(match);
      if (found) {
        messages.splice(messages.indexOf(found), 1);
        return Promise.resolve(found);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(messages)}`)), timeoutMs);
        waiters.push({
          match,
          from: messages.length,
          resolve: (m) => {
            clearTimeout(timer);
            messages.splice(messages.indexOf(m), 1);
            resolve(m);
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
}
