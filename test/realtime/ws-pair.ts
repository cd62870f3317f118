/**
 * A real ws server socket and its client over loopback, for tests of what
 * Connection writes to the wire (connection-wire, connect-frames).
 */
import { once } from "node:events";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";

export interface WsPair {
  server: WebSocket;
  client: WebSocket;
  /** Every message the client got, as [text, isBinary]. */
  got: Array<[string, boolean]>;
  /** Resolves once the client holds `n` messages. */
  until(n: number): Promise<void>;
  /** Writes made to the server's TCP socket so far. */
  counter: { writes: number };
}

/** Opens a pair; `cleanup` gets its teardown (run it after the test). */
export async function wsPair(perMessageDeflate: boolean, cleanup: Array<() => Promise<void>>): Promise<WsPair> {
  const http: Server = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: perMessageDeflate ? { threshold: 0 } : false });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const accepted = once(wss, "connection") as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`, { perMessageDeflate });
  const got: Array<[string, boolean]> = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  client.on("message", (data, isBinary) => {
    got.push([String(data), isBinary]);
    for (const w of waiters) if (got.length >= w.n) w.resolve();
  });
  const [[server]] = await Promise.all([accepted, once(client, "open")]);
  cleanup.push(async () => {
    client.terminate();
    server!.terminate();
    wss.close();
    await new Promise((r) => http.close(r));
  });
  const socket = (server as unknown as { _socket: { write: (...args: unknown[]) => boolean } })._socket;
  const counter = { writes: 0 };
  const write = socket.write.bind(socket);
  socket.write = (...args: unknown[]) => {
    counter.writes += 1;
    return write(...args);
  };
  return {
    server: server!,
    client,
    got,
    counter,
    until: (n) => (got.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
  };
}
