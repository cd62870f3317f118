/**
 * Baselines measured in the same run as Herald: what bare `ws`, a bare
 * HTTP+ws relay and a raw-`pg` relay achieve on this machine right now.
 */
import http from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { WebSocketServer, type WebSocket } from "ws";

export interface BareServer {
  url: string;
  /** Live sockets by user id (the `?user=` query of the connection). */
  sockets: Map<string, WebSocket[]>;
  all(): WebSocket[];
  close(): Promise<void>;
}

/**
 * A bare `ws` server (perMessageDeflate off). With `relay`, POST / with a
 * JSON body {userId, ...} is sent to that user's sockets before answering 201;
 * with `pool`, the body is first INSERTed ... RETURNING into `options.table`
 * (a per-run name: concurrent bench runs must not drop each other's table).
 */
export async function startBareServer(
  options: { relay?: boolean; pool?: pg.Pool; table?: string; onConnect?: (ws: WebSocket, userId: string) => void } = {},
): Promise<BareServer> {
  const sockets = new Map<string, WebSocket[]>();
  const server = http.createServer((req, res) => {
    if (!options.relay || req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { userId: string; title: string; message: string; data?: unknown };
      let row: Record<string, unknown> = { id: String(Math.random()), ...body };
      if (options.pool) {
        try {
          const r = await options.pool.query(
            `INSERT INTO ${options.table ?? "bench_relay"} (user_id, title, message, data) VALUES ($1, $2, $3, $4) RETURNING id, user_id, title, message, data, created_at`,
            [body.userId, body.title, body.message, JSON.stringify(body.data ?? null)],
          );
          row = r.rows[0] as Record<string, unknown>;
        } catch {
          res.writeHead(500).end();
          return;
        }
      }
      const frame = JSON.stringify({ type: "notification", notification: { ...row, data: body.data } });
      for (const s of sockets.get(body.userId) ?? []) s.send(frame);
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ id: row.id }));
    });
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on("connection", (ws, req) => {
    const user = new URL(req.url ?? "/", "http://x").searchParams.get("user") ?? "anon";
    const list = sockets.get(user) ?? [];
    list.push(ws);
    sockets.set(user, list);
    ws.on("close", () => sockets.set(user, (sockets.get(user) ?? []).filter((s) => s !== ws)));
    options.onConnect?.(ws, user);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `127.0.0.1:${port}`,
    sockets,
    all: () => [...sockets.values()].flat(),
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}

export const benchRelayTable = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id text NOT NULL, title text NOT NULL,
  message text NOT NULL, data jsonb, created_at timestamptz NOT NULL DEFAULT now())`;
