/**
 * Edges of the realtime contract: a backlog larger than one sync page is
 * announced explicitly (`truncated`, the client pages on or reloads), never
 * a silent partial gap; and a burst of connection attempts leaves the
 * server serving.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { badInput, record } from "./support/figures.js";
import { eventually } from "./support/processes.js";
import { call } from "./support/rest.js";

let h: TestHerald;
let floodOutcomes: string[] = [];
beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(() => h?.stop());

describe("realtime edges", () => {
  it("a backlog beyond one sync page is flagged truncated and paged to the end, in order, without gaps", async () => {
    const backlog = h.herald.realtime.options.syncLimit + 150;
    const rows = Array.from({ length: backlog }, (_, i) => `('pager-ws', 'new_message', 'normal', 'n${i}', 'm')`).join(",");
    await h.database.query(`INSERT INTO notifications (user_id, type, priority, title, message) VALUES ${rows}`);
    const ws = new WebSocket(`${h.wsUrl}/ws?token=${encodeURIComponent(await h.tokenFor("pager-ws"))}`);
    const pages: { notifications: { id: string; seq: number }[]; cursor: number; truncated?: boolean }[] = [];
    ws.on("message", (raw) => {
      const m = JSON.parse(raw.toString());
      if (m.type !== "sync") return;
      pages.push(m);
      if (m.truncated) ws.send(JSON.stringify({ type: "sync", cursor: m.cursor }));
    });
    await eventually(() => pages.length > 0 && !pages.at(-1)!.truncated, 20_000, "the last sync page");
    ws.close();
    expect(pages[0]!.truncated).toBe(true);
    const seqs = pages.flatMap((p) => p.notifications.map((n) => n.seq));
    expect(seqs.length).toBe(backlog);
    expect(new Set(seqs).size).toBe(backlog);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs); // oldest first, across pages
    record({ checked: backlog, lost: backlog - new Set(seqs).size });
  });

  it("a burst of 300 simultaneous connection attempts leaves the server serving REST and new sockets", async () => {
    const token = await h.tokenFor("flooder");
    const outcomes = await Promise.all(
      Array.from(
        { length: 300 },
        () =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(`${h.wsUrl}/ws?token=${encodeURIComponent(token)}`);
            ws.on("open", () => {
              resolve("open");
              ws.terminate();
            });
            ws.on("unexpected-response", (_req, res) => resolve(String(res.statusCode)));
            ws.on("error", () => resolve("error"));
          }),
      ),
    );
    floodOutcomes = outcomes;
    badInput("ws_connect_flood", outcomes.length);
    const counts: Record<string, number> = {};
    for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
    console.log(`connect flood outcomes: ${JSON.stringify(counts)}`);
    expect((await call(h.baseUrl, "GET", "/health")).status).toBe(200);
    await eventually(() => h.herald.realtime.getLocalConnectionsCount() === 0, 10_000, "flood sockets released");
    const ws = new WebSocket(`${h.wsUrl}/ws?token=${encodeURIComponent(await h.tokenFor("after-flood"))}`);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    ws.close();
  });

  // Upgrades are limited per user (a token bucket in the realtime server).
  it("a connect flood from one token is rate-limited with 429 before the upgrade", () => {
    expect(floodOutcomes.length).toBe(300);
    expect(floodOutcomes.filter((o) => o === "429" || o === "503").length).toBeGreaterThan(0);
  });
});
