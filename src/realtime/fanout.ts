/**
 * Fan-out across instances. A message is delivered to this instance's sockets
 * at once, then published once on the bus channel `realtime` (unless the bus
 * knows no other instance listens: Bus.reachesOthers); every other instance
 * delivers it to its own sockets of that user (the origin skips its own echo).
 * One channel for the cluster keeps broadcasts to one bus message and
 * subscriptions constant; each instance filters by the users it holds.
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
  originPrefixes,
  type Frame,
} from "./frames.js";
import { type Hub, pushTo } from "./hub.js";
import type { BroadcastBase, BroadcastRecipient } from "../notifications/index.js";
import type { NotificationDto, Presentation, ServerMessage } from "../protocol/index.js";

export const FANOUT_CHANNEL = "realtime";
/** Rare commands to every instance (close a user's connections), apart from the frame traffic. */
export const DISCONNECT_CHANNEL = "realtime.disconnect";
/** Recipients per bus message, so one huge broadcast does not become one huge Redis payload. */
const BROADCAST_CHUNK = 10_000;

export class Fanout {
  private unsubscribe: (() => Promise<void>) | undefined;
  private unsubscribeDisconnects: (() => Promise<void>) | undefined;
  /** Our handler of FANOUT_CHANNEL (the bus tells whether anyone else listens). */
  private readonly onMessage = (raw: string) => this.receive(raw);
  /** How our own messages begin: their echo is dropped unparsed. */
  private readonly echo: readonly [string, string];

  constructor(
    private readonly bus: Bus,
    private readonly instanceId: string,
    private readonly hub: Hub,
    private readonly logger: Logger,
  ) {
    this.echo = originPrefixes(instanceId);
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.bus.subscribe(FANOUT_CHANNEL, this.onMessage);
    this.unsubscribeDisconnects = await this.bus.subscribe(DISCONNECT_CHANNEL, (raw) => this.receiveDisconnect(raw));
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    await this.unsubscribeDisconnects?.();
    this.unsubscribe = this.unsubscribeDisconnects = undefined;
  }

  /** Closes the user's connections here at once, then on every other instance. */
  async disconnect(userId: string, code: number, reason: string): Promise<void> {
    this.closeLocal(userId, code, reason);
    await this.bus.publish(DISCONNECT_CHANNEL, JSON.stringify({ o: this.instanceId, u: userId, c: code, r: reason }));
  }

  private closeLocal(userId: string, code: number, reason: string): void {
    for (const conn of this.hub.of(userId)) conn.close(code, reason);
  }

  private receiveDisconnect(raw: string): void {
    try {
      const m = JSON.parse(raw) as { o: string; u: string; c: number; r: string };
      if (m.o !== this.instanceId && this.hub.has(m.u)) this.closeLocal(m.u, m.c, m.r);
    } catch (err) {
      this.logger.warn({ err }, "undecodable realtime disconnect message dropped");
    }
  }

  async notification(dto: NotificationDto, presentation: Presentation): Promise<void> {
    await this.frameToUser(dto.userId, notificationFrame(dto, presentation));
  }

  async toUser(userId: string, message: ServerMessage): Promise<void> {
    await this.frameToUser(userId, messageFrame(message));
  }

  /**
   * Whether a message on FANOUT_CHANNEL can reach another instance. A single
   * process on the in-process bus (the embedded default) has no one else to
   * tell: its envelope (a broadcast's names every recipient, ~0.6-0.8 ms per
   * 1,000: bench/broadcast-frames.ts) would be built only for its own echo to drop.
   */
  private othersListen(): boolean {
    return this.bus.reachesOthers?.(FANOUT_CHANNEL, this.onMessage) ?? true;
  }

  private async frameToUser(userId: string, frame: Frame): Promise<void> {
    this.hub.deliver(userId, frame);
    if (!this.othersListen()) return;
    const header = { k: "u" as const, o: this.instanceId, u: userId, ...(frame.id !== undefined ? { i: frame.id, s: frame.seq } : {}) };
    await this.bus.publish(FANOUT_CHANNEL, encodeEnvelope(header, frame.text));
  }

  async broadcast(base: BroadcastBase, recipients: readonly BroadcastRecipient[]): Promise<void> {
    const template = new BroadcastTemplate(base);
    const hub = this.hub;
    for (const r of recipients) {
      const target = hub.lookup(r.userId);
      if (target !== undefined) pushTo(target, template.frameFor(r));
    }
    if (!this.othersListen()) return;
    for (let i = 0; i < recipients.length; i += BROADCAST_CHUNK) {
      const chunk = recipients.slice(i, i + BROADCAST_CHUNK);
      await this.bus.publish(FANOUT_CHANNEL, encodeEnvelope(broadcastHeader(this.instanceId, chunk), template.body));
    }
  }

  /** A message from another instance (or our own echo, ignored). */
  private receive(raw: string): void {
    if (raw.startsWith(this.echo[0]) || raw.startsWith(this.echo[1])) return;
    try {
      const { header, payload } = decodeEnvelope(raw);
      if (header.o === this.instanceId) return;
      if (header.k === "u") {
        if (this.hub.has(header.u)) this.hub.deliver(header.u, { text: payload, ...(header.i !== undefined ? { id: header.i, seq: header.s } : {}) });
        return;
      }
      let template: BroadcastTemplate | undefined;
      for (const [userId, id, seq, p] of header.r) {
        const target = this.hub.lookup(userId);
        if (target === undefined) continue;
        template ??= new BroadcastTemplate(payload);
        pushTo(target, template.frameFor({ userId, id, seq, presentation: header.p[p]! }));
      }
    } catch (err) {
      this.logger.warn({ err }, "undecodable realtime bus message dropped");
    }
  }
}
