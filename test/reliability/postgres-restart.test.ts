/**
 * PostgreSQL stopped (immediate mode, like a crash) and started again under
 * load, on a private cluster: while it is down creations answer 503 with a
 * problem body (never 500, never a 2xx that is then lost) and /ready says so;
 * when it is back the same pool serves again without restarting Herald.
 */
import { afterAll, describe, expect, it } from "vitest";
import pg from "pg";
import { loadConfig } from "../../src/config/index.js";
import { type Herald, createHerald } from "../../src/herald.js";
import type { Created } from "../support/bodies.js";
import { fault, record } from "./support/figures.js";
import { API_KEY, SECRET, eventually, tempDir } from "./support/processes.js";
import { type PrivatePostgres, startPrivatePostgres } from "./support/private-servers.js";
import { call, isProblem } from "./support/rest.js";

describe("PostgreSQL restarted under load (private cluster)", () => {
  let server: PrivatePostgres | undefined;
  let herald: Herald | undefined;
  const dir = tempDir();
  afterAll(async () => {
    await herald?.stop().catch(() => undefined);
    server?.drop();
    dir.remove();
  });

  it("answers 503 while it is down, loses no 2xx, and recovers without a restart", async (ctx) => {
    const started = await startPrivatePostgres();
    if (typeof started === "string") {
      ctx.skip(`private PostgreSQL unavailable (${started}); the shared server is never restarted`);
      return;
    }
    server = started;
    herald = await createHerald({
      config: loadConfig({ NODE_ENV: "test", JWT_SECRET: SECRET, HERALD_API_KEYS: API_KEY, DATA_DIR: dir.dir, LOG_LEVEL: "silent", DATABASE_URL: server.url }),
      jobs: false,
      serveWeb: false,
    });
    const base = await herald.listen(0, "127.0.0.1");

    const accepted = new Set<string>();
    const statuses: Record<number, number> = {};
    const bad: string[] = [];
    let stop = false;
    let i = 0;
    const creator = async () => {
      while (!stop) {
        const a = await call<Created>(base, "POST", "/api/notifications", {
          token: API_KEY,
          body: { userId: `pg-user-${i % 5}`, type: "new_message", title: `n${i++}`, message: "m" },
        });
        statuses[a.status] = (statuses[a.status] ?? 0) + 1;
        if (a.status === 201) accepted.add(a.body.notification.id);
        else if (a.status !== 503 || !isProblem(a, 503)) bad.push(`${a.status} ${a.text.slice(0, 200)}`);
        if (a.status === 503) await new Promise((r) => setTimeout(r, 50)); // a client honouring Retry-After, roughly
      }
    };
    const load = Promise.all([creator(), creator(), creator(), creator()]);
    const ready = async () => (await call(base, "GET", "/ready")).status;

    await eventually(() => accepted.size >= 30, 30_000, "load before the stop");
    await server.stopImmediate();
    fault("postgres_restart");
    await eventually(async () => (await ready()) === 503, 20_000, "/ready to report the outage");
    const readyDown = await call(base, "GET", "/ready");
    await eventually(() => (statuses[503] ?? 0) >= 3, 20_000, "503 answers while down");
    const acceptedBefore = accepted.size;

    await server.start();
    await eventually(async () => (await ready()) === 200, 30_000, "/ready to recover");
    await eventually(() => accepted.size >= acceptedBefore + 30, 30_000, "creations to succeed again");
    stop = true;
    await load;

    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    const stored = new Set((await client.query<{ id: string }>("SELECT id FROM notifications")).rows.map((r) => r.id));
    await client.end();
    const lost = [...accepted].filter((id) => !stored.has(id));
    record({ checked: accepted.size, lost: lost.length });

    expect(isProblem(readyDown, 503)).toBe(true);
    expect(bad).toEqual([]);
    expect(statuses[500] ?? 0).toBe(0);
    expect(lost).toEqual([]);
  });
});
