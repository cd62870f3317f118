/** SHELL (owned by the notifications work, issue 3). */
import type { NotificationWebSocketServer } from "../realtime/index.js";
import type { Runtime } from "../runtime.js";
import { defaultRuntime } from "../runtime.js";

export type NotificationDeps = Pick<Runtime, "database" | "bus" | "cache" | "clock" | "logger" | "analytics">;

export class NotificationService {
  readonly deps: Promise<NotificationDeps>;
  constructor(
    readonly realtime: NotificationWebSocketServer,
    deps?: NotificationDeps | Promise<NotificationDeps>,
  ) {
    this.deps = Promise.resolve(deps ?? defaultRuntime());
  }
}
