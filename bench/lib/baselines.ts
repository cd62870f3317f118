/**
 * Baselines measured in the same run as Herald: what bare `ws`, a bare
 * HTTP+ws relay and relays that store each creation first (one row per
 * request, or a durable group-commit relay) achieve on this machine now.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { PGlite } from "@electric-sql/pglite";
import type pg from "pg";
import { WebSocketServer, type WebSocket } from "ws";

export interface BareServer {
  url: string;
  /** Live sockets by user id (the `?user=` query of the connection). */
  sockets: Map<string, WebSocket[]>;
  all(): WebSocket[];
  /** Group-commit relay only: batches written and creations in them, since start. */
  batches: { count: number; rows: number; largest: number };
  close(): Promise<void>;
}

/** One parameterised statement, on a node-postgres pool or on PGlite: all a relay needs of its database. */
export interface RelayDb {
  query(text: string, params: unknown[]): Promise<Record<string, unknown>[]>;
}

export const poolRelayDb = (pool: pg.Pool): RelayDb => ({ query: async (text, params) => (await pool.query(text, params)).rows });
export const pgliteRelayDb = (db: PGlite): RelayDb => ({ query: async (text, params) => (await db.query<Record<string, unknown>>(text, params)).rows });

/**
 * What a relay does with POST / (a JSON body {userId, title, message, data}):
 * - "bare": sends it to the user's sockets, then answers 201 (no database);
 * - "insert-returning": one single-row INSERT ... RETURNING per request, then
 *   send, then 201;
 * - "group-commit" (the durable relay): creations that arrive while a commit
 *   is in flight queue; when it ends, all of them (up to GROUP_MAX) are
 *   written by one multi-row INSERT ... RETURNING (one statement in
 *   autocommit: one commit); each is answered 201 after that commit, then
 *   pushed. One commit in flight at a time. A commit starts at the end of the
 *   event-loop turn in which its first creation arrived (setImmediate), so
 *   requests read in the same turn share it: on PGlite, whose statements run
 *   synchronously on this thread, nothing else could ever arrive "while a
 *   commit is in flight", and every creation would be committed alone.
 */
export type RelayMode = "bare" | "insert-returning" | "group-commit";

/** Rows per group-commit statement at most (never reached at the bench's 32 requests in flight). */
const GROUP_MAX = 1000;

interface Creation {
  userId: string;
  title: string;
  message: string;
  data?: unknown;
}

const rowInsert = (table: string) =>
  `INSERT INTO ${table} (user_id, title, message, data) VALUES ($1, $2, $3, $4) RETURNING id, user_id, title, message, data, created_at`;
const groupInsert = (table: string) =>
  `INSERT INTO ${table} (id, user_id, title, message, data)
   SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
   RETURNING id, user_id, title, message, data, created_at`;

/**
 * A bare `ws` server (perMessageDeflate off). With `relay`, POST / is a
 * creation handled as RelayMode says, into `options.table` on `options.db`
 * (a per-run table name: concurrent bench runs must not drop each other's).
 */
export async function startBareServer(
  options: { relay?: RelayMode; db?: RelayDb; table?: string; onConnect?: (ws: WebSocket, userId: string) => void } = {},
): Promise<BareServer> {
  const sockets = new Map<string, WebSocket[]>();
  const table = options.table ?? "bench_relay";
  const db = options.db;
  if (options.relay && options.relay !== "bare" && !db) throw new Error(`relay ${options.relay} needs a database`);
  const batches = { count: 0, rows: 0, largest: 0 };

  const push = (body: Creation, row: Record<string, unknown>) => {
    const frame = JSON.stringify({ type: "notification", notification: { ...row, data: body.data } });
    for (const s of sockets.get(body.userId) ?? []) s.send(frame);
  };
  const created = (res: http.ServerResponse, id: unknown) => res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ id }));

  // Group commit: the queue of creations waiting for the commit in flight.
  let waiting: { id: string; body: Creation; res: http.ServerResponse }[] = [];
  let committing = false;
  const commitLoop = async () => {
    while (waiting.length > 0) {
      const batch = waiting.slice(0, GROUP_MAX);
      waiting = waiting.slice(batch.length);
      let rows: Record<string, unknown>[];
      try {
        rows = await db!.query(groupInsert(table), [
          batch.map((c) => c.id),
          batch.map((c) => c.body.userId),
          batch.map((c) => c.body.title),
          batch.map((c) => c.body.message),
          batch.map((c) => JSON.stringify(c.body.data ?? null)),
        ]);
      } catch {
        for (const c of batch) c.res.writeHead(500).end();
        continue;
      }
      batches.count++;
      batches.rows += batch.length;
      batches.largest = Math.max(batches.largest, batch.length);
      const byId = new Map(rows.map((r) => [String(r.id), r]));
      for (const c of batch) {
        created(c.res, c.id);
        push(c.body, byId.get(c.id) ?? { id: c.id });
      }
    }
    committing = false;
  };

  const server = http.createServer((req, res) => {
    if (!options.relay || req.method !== "POST") {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Creation;
      if (options.relay === "group-commit") {
        waiting.push({ id: randomUUID(), body, res });
        if (!committing) {
          committing = true;
          setImmediate(commitLoop);
        }
        return;
      }
      let row: Record<string, unknown> = { id: randomUUID(), ...body };
      if (options.relay === "insert-returning") {
        try {
          [row] = (await db!.query(rowInsert(table), [body.userId, body.title, body.message, JSON.stringify(body.data ?? null)])) as [Record<string, unknown>];
        } catch {
          res.writeHead(500).end();
          return;
        }
      }
      push(body, row);
      created(res, row.id);
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
    batches,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}

/**
 * The relays' notifications-like table: the columns a pushed notification
 * carries, the primary key as its only index (so a strict baseline: Herald's
 * table has more to maintain).
 */
export const benchRelayTable = (name: string) => `CREATE TABLE IF NOT EXISTS ${name} (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id text NOT NULL, title text NOT NULL,
  message text NOT NULL, data jsonb, created_at timestamptz NOT NULL DEFAULT now())`;
