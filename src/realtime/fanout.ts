/**
 * Fan-out across instances. A message is delivered to this instance's sockets
 * at once, then published once on the bus channel `realtime`; every other
 * instance delivers it to its own sockets of that user (the origin skips its
 * own echo). One channel for the cluster keeps broadcasts to one bus message
 * and subscriptions constant; each instance filters by the users it holds.
 */
import type { Bus } from "../bus/index.js";
import type { Logger } from "../observability/index.js";
import {
  BroadcastTemplate,
  broadcastHeader,
  decodeEnvelope,
  encodeEnvelope,
  messageFrame,
  notificationFrame,
  type Frame,
} from "./frames.js";
import type { Hub } from "./hub.js";
import type { BroadcastBase, BroadcastRecipient } from "../notifications/index.js";
import type { NotificationDto, Presentation, ServerMessage } from "../protocol/index.js";

export const FANOUT_CHANNEL = "realtime";
/** Recipients per bus message, so one huge broadcast does not become one huge Redis payload. */
const BROADCAST_CHUNK = 10_000;

export class Fanout {
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly instanceId: string,
    private readonly hub: Hub,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.bus.subscribe(FANOUT_CHANNEL, (raw) => this.receive(raw));
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  async notification(dto: NotificationDto, presentation: Presentation): Promise<void> {
    await this.frameToUser(dto.userId, notificationFrame(dto, presentation));
  }

  async toUser(userId: string, message: ServerMessage): Promise<void> {
    await this.frameToUser(userId, messageFrame(message));
  }

  private async frameToUser(userId: string, frame: Frame): Promise<void> {
    this.hub.deliver(userId, frame);
    const header = { k: "u" as const, o: this.instanceId, u: userId, ...(frame.id !== undefined ? { i: frame.id, s: frame.seq } : {}) };
    await this.bus.publish(FANOUT_CHANNEL, encodeEnvelope(header, frame.text));
  }

  async broadcast(base: BroadcastBase, recipients: readonly BroadcastRecipient[]): Promise<void> {
    const template = new BroadcastTemplate(base);
    for (const r of recipients) if (this.hub.has(r.userId)) this.hub.deliver(r.userId, template.frameFor(r));
    for (let i = 0; i < recipients.length; i += BROADCAST_CHUNK) {
      const chunk = recipients.slice(i, i + BROADCAST_CHUNK);
      await this.bus.publish(FANOUT_CHANNEL, encodeEnvelope(broadcastHeader(this.instanceId, chunk), template.body));
    }
  }

  /** A message from another instance (or our own echo, ignored). */
  private receive(raw: string): void {
    try {
      const { header, payload } = decodeEnvelope(raw);
      if (header.o === this.instanceId) return;
      if (header.k === "u") {
        if (this.hub.has(header.u)) this.hub.deliver(header.u, { text: payload, ...(header.i !== undefined ? { id: header.i, seq: header.s } : {}) });
        return;
      }
      let template: BroadcastTemplate | undefined;
      for (const [userId, id, seq, p] of header.r) {
        if (!this.hub.has(userId)) continue;
        template ??= new BroadcastTemplate(payload);
        this.hub.deliver(userId, template.frameFor({ userId, id, seq, presentation: header.p[p]! }));
      }
    } catch (err) {
      this.logger.warn({ err }, "undecodable realtime bus message dropped");
    }
  }
}
