import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { listMigrations, migrate, schema } from "../src/db/index.js";
import { type TestDatabase, openTestDatabase } from "./support/database.js";

describe("database", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await openTestDatabase();
  });
  afterAll(() => database.cleanup());

  it("applies every migration once and is idempotent", async () => {
    const rows = await database.query<{ name: string }>("SELECT name FROM herald_migrations ORDER BY name");
    expect(rows.map((r) => r.name)).toEqual(listMigrations().map((m) => m.name));
    expect(await migrate(database)).toEqual([]);
  });

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

  it("round-trips a notification through Drizzle with defaults and a sequence", async () => {
    const [a] = await database.db
      .insert(schema.notifications)
      .values({ userId: "u1", type: "new_message", priority: "high", title: "t", message: "m", data: { k: 1 } })
      .returning();
    const [b] = await database.db
      .insert(schema.notifications)
      .values({ userId: "u1", type: "new_message", priority: "high", title: "t2", message: "m2" })
      .returning();
    expect(a!.read).toBe(false);
    expect(a!.deliveryStatus).toBe("pending");
    expect(a!.data).toEqual({ k: 1 });
    expect(b!.seq).toBeGreaterThan(a!.seq);
    const found = await database.db.select().from(schema.notifications).where(eq(schema.notifications.id, a!.id));
    expect(found[0]!.title).toBe("t");
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
});
