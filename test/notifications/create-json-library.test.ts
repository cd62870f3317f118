/**
 * A library caller's notification is its own to change (NotificationDto is a
 * plain mutable object, and the guide hands it back from create). Frames built
 * from it later (NotificationWebSocketServer.publishNotification or
 * publishToUser, which build them with notificationFrame) must carry what it
 * says then, not a text kept at creation (11452d8 kept one for every creation).
 * Only a caller that promises not to change it (the REST route) gets the text
 * kept for its frame and its 201.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { keptNotificationJson, NotificationService, type RealtimePublisher } from "../../src/notifications/index.js";
import { notificationFrame } from "../../src/realtime/frames.js";
import { createRuntime, type Runtime } from "../../src/runtime.js";
import { openTestDatabase, type TestDatabase } from "../support/database.js";

const published: Parameters<RealtimePublisher["publishNotification"]>[] = [];
const realtime: RealtimePublisher = {
  useInbox: () => undefined,
  publishNotification: async (...args) => {
    published.push(args);
  },
  publishBroadcast: async () => undefined,
  publishToUser: async () => undefined,
};

let db: TestDatabase;
let runtime: Runtime;
let dataDir: string;
let service: NotificationService;

beforeAll(async () => {
  db = await openTestDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), "herald-create-json-"));
  runtime = await createRuntime(
    loadConfig({ NODE_ENV: "test", DATA_DIR: dataDir, JWT_SECRET: "create-json-library-secret-0123456789-abcdef", LOG_LEVEL: "silent" }),
    { database: db },
  );
  service = new NotificationService(realtime, runtime);
});

afterAll(async () => {
  await runtime?.close();
  await db?.cleanup();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("a created notification's JSON", () => {
  it("follows the caller's changes to the notification create returned", async () => {
    const n = await service.createAndSendNotification({ userId: "lib-1", type: "new_message", title: "First", message: "m", data: { a: 1 } });
    expect(n).not.toBeNull();
    const [[pushed, presentation]] = published.splice(0) as [Parameters<RealtimePublisher["publishNotification"]>];
    expect(pushed).toBe(n);
    n!.title = "Edited";
    n!.read = true;
    n!.data!.a = 2;
    expect(notificationFrame(n!, presentation).text).toBe(JSON.stringify({ type: "notification", notification: n, presentation }));
  });

  it("is written once when the caller says it will not change the notification (the REST route)", async () => {
    const outcome = await service.create({ userId: "lib-1", type: "new_message", title: "Once", message: "m" }, { serializeOnce: true });
    expect(outcome.status).toBe("created");
    const n = (outcome as { notification: Parameters<typeof keptNotificationJson>[0] }).notification;
    expect(keptNotificationJson(n)).toBe(JSON.stringify(n));
    published.splice(0);
  });
});
