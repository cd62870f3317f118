/**
 * SHELL (owned by the realtime work, issue 4): the WebSocket server of the
 * guide, attachable to any http.Server.
 */
import type { Server as HttpServer } from "node:http";
import type { Runtime } from "../runtime.js";
import { defaultRuntime } from "../runtime.js";
import type { BroadcastBase, BroadcastRecipient, InboxActions, Presentation, ServerMessage } from "./protocol.js";
import type { NotificationDto } from "../notifications/types.js";

export type RealtimeDeps = Pick<Runtime, "database" | "bus" | "auth" | "clock" | "logger" | "analytics" | "metrics" | "instanceId">;

export class NotificationWebSocketServer {
  readonly deps: Promise<RealtimeDeps>;

  constructor(
    readonly httpServer: HttpServer,
    deps?: RealtimeDeps | Promise<RealtimeDeps>,
  ) {
    this.deps = Promise.resolve(deps ?? defaultRuntime());
  }

  /** Registers the notification domain's handling of client `read` messages. */
  useInbox(_inbox: InboxActions): void {}

  /** Pushes a new notification to every live connection of its user, on any instance. */
  async publishNotification(_notification: NotificationDto, _presentation: Presentation): Promise<void> {}

  /**
   * Pushes one broadcast to the live connections of the given recipients on
   * every instance; the shared part is serialized once, not once per socket.
   */
  async publishBroadcast(_base: BroadcastBase, _recipients: BroadcastRecipient[]): Promise<void> {}

  /** True when the user has a live connection on any instance. */
  async isOnline(_userId: string): Promise<boolean> {
    return false;
  }

  /** Sends a protocol message to every live connection of a user, on any instance. */
  async publishToUser(_userId: string, _message: ServerMessage): Promise<void> {}

  getConnectedClientsCount(): number {
    return 0;
  }

  getConnectedProviders(): string[] {
    return [];
  }

  /** Closes every socket with 1001 and flushes pending writes. */
  async close(): Promise<void> {}
}
