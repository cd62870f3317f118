/** The Database interface on PGlite or PostgreSQL: plain SQL, transactions, scripts, one held connection. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDatabase, openTestDatabase } from "../support/database.js";

describe("database", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(() => database.cleanup());

  it("has every table of the guide plus the user directory", async () => {
    const tables = await database.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name",
    );
    expect(tables.map((t) => t.table_name)).toEqual(
      expect.arrayContaining([
        "analytics_events",
        "email_digests",
        "notification_preferences",
        "notification_queue",
        "notification_templates",
        "notifications",
        "users",
        "websocket_sessions",
      ]),
    );
  });

  it("round-trips a notification through plain SQL with defaults, jsonb and a rising sequence", async () => {
    const insert = `INSERT INTO notifications (user_id, type, priority, title, message, data) VALUES ($1, 'new_message', 'high', $2, 'm', $3)
      RETURNING id, seq, read, delivery_status, data, created_at`;
    const [a] = await database.query<{ id: string; seq: string | number; read: boolean; delivery_status: string; data: unknown; created_at: Date }>(insert, ["u1", "t", { k: 1 }]);
    const [b] = await database.query<{ seq: string | number }>(insert, ["u1", "t2", null]);
    expect(a).toMatchObject({ read: false, delivery_status: "pending", data: { k: 1 } });
    expect(a!.created_at).toBeInstanceOf(Date);
    expect(Number(b!.seq)).toBeGreaterThan(Number(a!.seq));
    expect(await database.query("SELECT title FROM notifications WHERE id = $1", [a!.id])).toEqual([{ title: "t" }]);
  });

  it("rolls a failed transaction back completely", async () => {
    await expect(
      database.transaction(async (tx) => {
        await tx.query("INSERT INTO users (id) VALUES ($1)", ["rollback-user"]);
        await tx.query("INSERT INTO users (id) VALUES ($1)", ["rollback-user"]);
      }),
    ).rejects.toThrow();
    expect(await database.query("SELECT 1 FROM users WHERE id = $1", ["rollback-user"])).toEqual([]);
  });

  it("exec sends a script of several statements whole, semicolons inside $$ bodies included", async () => {
    await database.exec(`
      CREATE TABLE script_probe (x int);
      DO $$ BEGIN INSERT INTO script_probe VALUES (1); INSERT INTO script_probe VALUES (2); END $$;
      INSERT INTO script_probe VALUES (3);`);
    expect(await database.query("SELECT count(*)::int AS n FROM script_probe")).toEqual([{ n: 3 }]);
  });

  it("connection() holds one session: its temp table stays visible, and its transactions roll back whole", async () => {
    await database.connection(async (conn) => {
      await conn.exec("CREATE TEMP TABLE IF NOT EXISTS held_probe (x int); INSERT INTO held_probe VALUES (1)");
      expect(await conn.query("SELECT count(*)::int AS n FROM held_probe")).toEqual([{ n: 1 }]);
      await expect(conn.transaction(async (tx) => {
        await tx.exec("INSERT INTO held_probe VALUES (2); INSERT INTO held_probe VALUES (3)");
        throw new Error("undo");
      })).rejects.toThrow("undo");
      expect(await conn.query("SELECT count(*)::int AS n FROM held_probe")).toEqual([{ n: 1 }]);
      await conn.exec("DROP TABLE held_probe");
    });
  });
});
