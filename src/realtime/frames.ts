/**
 * Serialization of server messages, done once per message (not per socket),
 * and the envelope they travel in between instances over the bus.
 *
 * A bus message is `<header JSON>\n<payload>`: JSON.stringify never emits a
 * raw newline, so the first newline splits them, and the payload (already
 * the exact text sockets receive) is never parsed or re-encoded on the way.
 */
import type { BroadcastBase, BroadcastRecipient } from "../notifications/index.js";
import type { NotificationDto, Presentation, ServerMessage } from "../protocol/index.js";

/** What the hub hands to a connection: the text to send, and for notifications its id and cursor. */
export interface Frame {
  readonly text: string;
  /**
   * The same text already UTF-8 encoded, when the producer built it that way
   * (broadcasts): sockets send it as is, skipping ws's per-send byteLength scan
   * and string encoding.
   */
  readonly bytes?: Buffer;
  /** Set for `notification` messages, so a syncing connection can drop what the sync already holds. */
  readonly id?: string;
  readonly seq?: number;
}

export function notificationFrame(dto: NotificationDto, presentation: Presentation): Frame {
  return {
    text: JSON.stringify({ type: "notification", notification: dto, presentation } satisfies ServerMessage),
    id: dto.id,
    seq: dto.seq,
  };
}

export function messageFrame(message: ServerMessage): Frame {
  if (message.type === "notification") return notificationFrame(message.notification, message.presentation);
  return { text: JSON.stringify(message) };
}

/** A broadcast frame: the bytes are what goes out; the text is decoded only if someone asks. */
class BytesFrame implements Frame {
  constructor(
    readonly bytes: Buffer,
    readonly id: string,
    readonly seq: number,
  ) {}
  get text(): string {
    return this.bytes.toString("utf8");
  }
}

const BROADCAST_PREFIX = Buffer.from('{"type":"notification","notification":{"id":');

/**
 * A broadcast's shared part serialized and UTF-8 encoded once; `frameFor`
 * writes one recipient's id, seq and userId between the pre-encoded prefix
 * and suffix into a single Buffer (the only per-recipient encoding is those
 * few ASCII-or-short fields).
 */
export class BroadcastTemplate {
  /** The base object's members without the opening brace: `"type":...}`. */
  readonly body: string;
  /** Per presentation: `<sep><body>,"presentation":{...}}` encoded once. */
  private readonly suffixes = new Map<string, Buffer>();

  constructor(baseOrBody: BroadcastBase | string) {
    if (typeof baseOrBody === "string") {
      this.body = baseOrBody;
    } else {
      const json = JSON.stringify(baseOrBody);
      this.body = json === "{}" ? "}" : json.slice(1);
    }
  }

  private suffix(p: Presentation): Buffer {
    const key = `${p.sound ? 1 : 0}${p.desktop ? 1 : 0}${p.silent ? 1 : 0}${p.volume}`;
    let buf = this.suffixes.get(key);
    if (buf === undefined) {
      const sep = this.body === "}" ? "" : ",";
      const presentation = JSON.stringify({ sound: p.sound, volume: p.volume, desktop: p.desktop, silent: p.silent });
      buf = Buffer.from(`${sep}${this.body},"presentation":${presentation}}`);
      this.suffixes.set(key, buf);
    }
    return buf;
  }

  frameFor(r: BroadcastRecipient): Frame {
    const seq = Number(r.seq);
    const middle = `${JSON.stringify(r.id)},"seq":${seq},"userId":${JSON.stringify(r.userId)}`;
    const suffix = this.suffix(r.presentation);
    const middleLength = Buffer.byteLength(middle);
    const out = Buffer.allocUnsafe(BROADCAST_PREFIX.length + middleLength + suffix.length);
    BROADCAST_PREFIX.copy(out, 0);
    out.write(middle, BROADCAST_PREFIX.length);
    suffix.copy(out, BROADCAST_PREFIX.length + middleLength);
    return new BytesFrame(out, r.id, seq);
  }
}

/** Envelope headers; `o` is the origin instance, which already delivered locally. */
export type BusHeader =
  | { k: "u"; o: string; u: string; i?: string; s?: number }
  | { k: "b"; o: string; r: Array<[userId: string, id: string, seq: number, presentation: number]>; p: Presentation[] };

export function encodeEnvelope(header: BusHeader, payload: string): string {
  return `${JSON.stringify(header)}\n${payload}`;
}

export function decodeEnvelope(raw: string): { header: BusHeader; payload: string } {
  const cut = raw.indexOf("\n");
  if (cut < 0) throw new Error("bus message without payload");
  return { header: JSON.parse(raw.slice(0, cut)) as BusHeader, payload: raw.slice(cut + 1) };
}

/** Builds the broadcast header, sharing identical presentations by index. */
export function broadcastHeader(origin: string, recipients: readonly BroadcastRecipient[]): BusHeader {
  const index = new Map<string, number>();
  const p: Presentation[] = [];
  const r: Array<[string, string, number, number]> = [];
  for (const rec of recipients) {
    const pr = rec.presentation;
    const key = `${pr.sound}|${pr.volume}|${pr.desktop}|${pr.silent}`;
    let k = index.get(key);
    if (k === undefined) {
      k = p.length;
      index.set(key, k);
      p.push(pr);
    }
    r.push([rec.userId, rec.id, Number(rec.seq), k]);
  }
  return { k: "b", o: origin, r, p };
}
