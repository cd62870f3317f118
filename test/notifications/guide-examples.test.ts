/**
 * The guide's "API Usage Examples" for notifications, copied verbatim but for
 * the import paths: the package is imported by its name, the services are
 * built with the guide's constructors (no dependencies passed), and the
 * default runtime points at a test database.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  NotificationService,
  NotificationWebSocketServer,
  UserDirectory,
  createRuntime,
  loadConfig,
  setDefaultRuntime,
  type Runtime,
} from "herald";
import { type TestDatabase, openTestDatabase } from "../support/database.js";

let testDb: TestDatabase;
let runtime: Runtime;
let dataDir: string;
let server: ReturnType<typeof createServer>;
let wsServer: NotificationWebSocketServer;
let notificationService: NotificationService;
const log = vi.spyOn(console, "log").mockImplementation(() => undefined);

beforeAll(async () => {
  testDb = await openTestDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), "herald-guide-"));
  runtime = await createRuntime(
    loadConfig({ NODE_ENV: "test", DATA_DIR: dataDir, JWT_SECRET: "guide-example-secret-0123456789-abcdefghij", LOG_LEVEL: "silent" }),
    { database: testDb },
  );
  runtime.start();
  setDefaultRuntime(runtime);

  // The guide's "Initialize Services", for the parts these examples use.
  server = createServer();
  wsServer = new NotificationWebSocketServer(server);
  notificationService = new NotificationService(wsServer);

  // Providers in the directory, so the broadcast has someone to reach.
  const users = new UserDirectory();
  for (const id of ["provider-123", "provider-456", "provider-789"]) await users.upsert({ id, timezone: "UTC" });
});

afterAll(async () => {
  await wsServer?.close();
  await runtime?.close();
  setDefaultRuntime(undefined);
  await testDb?.cleanup();
  rmSync(dataDir, { recursive: true, force: true });
  log.mockRestore();
});

describe("the guide's API usage examples", () => {
  it("Creating a Notification", async () => {
    const notification = await notificationService.createAndSendNotification({
      userId: "provider-123",
      type: "new_message",
      priority: "high",
      title: "New message from Sarah Johnson",
      message: "Sarah has sent you a message about the booking",
      description: "Click to view the conversation",
      icon: "💬",
      actionUrl: "/messages/msg-456",
      actionLabel: "View Message",
      relatedId: "msg-456",
      data: {
        senderId: "client-789",
        conversationId: "conv-456",
      },
    });

    expect(notification).toMatchObject({
      userId: "provider-123",
      type: "new_message",
      priority: "high",
      icon: "💬",
      read: false,
      archived: false,
      deliveryStatus: "pending",
      data: { senderId: "client-789", conversationId: "conv-456" },
    });
  });

  it("Broadcasting Notification", async () => {
    const count = await notificationService.createAndBroadcastNotification({
      type: "platform_update",
      priority: "normal",
      title: "New feature: Advanced Analytics",
      message: "Check out our new analytics dashboard",
      actionUrl: "/analytics",
      actionLabel: "Explore",
    });

    console.log(`Notification sent to ${count} providers`);

    expect(count).toBe(3);
    expect(log).toHaveBeenCalledWith("Notification sent to 3 providers");
  });

  it("Getting User Notifications", async () => {
    const result = await notificationService.getNotifications("provider-123", {
      limit: 20,
      offset: 0,
      read: false,
      archived: false,
    });

    console.log(`Total: ${result.total}, Showing: ${result.notifications.length}`);

    expect(result.total).toBe(2);
    expect(result.notifications.map((n) => n.type)).toEqual(["platform_update", "new_message"]);
    expect(log).toHaveBeenCalledWith("Total: 2, Showing: 2");
  });
});
