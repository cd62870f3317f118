/**
 * SHELL (owned by the realtime work, issue 4): the WebSocket server of the
 * guide, attachable to any http.Server.
 */
import type { Server as HttpServer } from "node:http";
import type { Runtime } from "../runtime.js";
import { defaultRuntime } from "../runtime.js";
import type { ServerMessage } from "./protocol.js";
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

  /** Pushes a new notification to every live connection of its user, on any instance. */
  async publishNotification(_notification: NotificationDto): Promise<void> {}

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
