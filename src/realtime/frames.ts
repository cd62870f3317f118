/**
 * Serialization of server messages, done once per message (not per socket),
 * and the envelope they travel in between instances over the bus.
 *
 * A bus message is `<header JSON>\n<payload>`: JSON.stringify never emits a
 * raw newline, so the first newline splits them, and the payload (already
 * the exact text sockets receive) is never parsed or re-encoded on the way.
 */
import { type BroadcastBase, type BroadcastRecipient, notificationJson } from "../notifications/index.js";
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
  /**
   * The whole WebSocket frame (a server's unmasked text frame: header, then
   * `bytes`), when the producer built it (broadcasts): a connection whose ws
   * sender is idle writes it to the TCP socket in one call, as ws itself would
   * after framing it (see connection.ts `writeFramed`).
   */
  readonly wire?: Buffer;
  /** Set for `notification` messages, so a syncing connection can drop what the sync already holds. */
  readonly id?: string;
  readonly seq?: number;
}

/** JSON.stringify({ type: "notification", notification, presentation }), with the notification's text written once (notificationJson). */
export function notificationFrame(dto: NotificationDto, presentation: Presentation): Frame {
  return {
    text: `{"type":"notification","notification":${notificationJson(dto)},"presentation":${JSON.stringify(presentation)}}`,
    id: dto.id,
    seq: dto.seq,
  };
}

export function messageFrame(message: ServerMessage): Frame {
  if (message.type === "notification") return notificationFrame(message.notification, message.presentation);
  return { text: JSON.stringify(message) };
}

/**
 * A broadcast frame: `wire` is what goes out (the WebSocket header at 0, the
 * JSON text from `offset`); the payload view and the decoded text are made
 * only if someone asks (a connection that cannot write the frame whole).
 */
class WireFrame implements Frame {
  constructor(
    readonly wire: Buffer,
    private readonly offset: number,
    readonly id: string,
    readonly seq: number,
  ) {}
  get bytes(): Buffer {
    return this.wire.subarray(this.offset);
  }
  get text(): string {
    return this.wire.toString("utf8", this.offset);
  }
}

/** FIN + text opcode: a whole, unfragmented text message. */
const FIN_TEXT = 0x81;

/** Length of the header of an unmasked (server-to-client) frame carrying `length` payload bytes (RFC 6455 5.2). */
export function frameHeaderLength(length: number): number {
  return length < 126 ? 2 : length < 65_536 ? 4 : 10;
}

/** Writes that header at the start of `out`. */
export function writeFrameHeader(out: Buffer, length: number, headerLength: number): void {
  out[0] = FIN_TEXT;
  if (headerLength === 2) {
    out[1] = length;
  } else if (headerLength === 4) {
    out[1] = 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    out.writeUInt32BE(length >>> 0, 6);
  }
}

/** Text that JSON writes as it is between its quotes: printable ASCII without `"` and `\\`. */
const PLAIN_JSON_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A JSON string of plain text (PLAIN_JSON_TEXT): the text between quotes. */
const quotePlain = (text: string) => `"${text}"`;

const BROADCAST_PREFIX = Buffer.from('{"type":"notification","notification":{"id":');

/**
 * A broadcast's shared part serialized and UTF-8 encoded once; `frameFor`
 * writes one recipient's whole WebSocket frame into a single Buffer: the
 * frame header, the pre-encoded prefix, the recipient's id, seq and userId
 * (the only per-recipient encoding: a few short fields), and the pre-encoded
 * rest. Sockets send that Buffer as it is: no per-recipient JSON.stringify of
 * the notification, no framing or copying by ws.
 */
export class BroadcastTemplate {
  /** The base object's members without the opening brace: `"type":...}`. */
  readonly body: string;
  /** Per presentation: `<sep><body>,"presentation":{...}}` encoded once. */
  private readonly suffixes = new Map<string, Buffer>();
  /** The last presentation object seen and its suffix: recipients of one decision share the object. */
  private lastPresentation: Presentation | undefined = undefined;
  private lastSuffix: Buffer | undefined = undefined;

  constructor(baseOrBody: BroadcastBase | string) {
    if (typeof baseOrBody === "string") {
      this.body = baseOrBody;
    } else {
      const json = JSON.stringify(baseOrBody);
      this.body = json === "{}" ? "}" : json.slice(1);
    }
  }

  private suffix(p: Presentation): Buffer {
    if (p === this.lastPresentation) return this.lastSuffix!;
    const key = `${p.sound ? 1 : 0}${p.desktop ? 1 : 0}${p.silent ? 1 : 0}${p.volume}`;
    let buf = this.suffixes.get(key);
    if (buf === undefined) {
      const sep = this.body === "}" ? "" : ",";
      const presentation = JSON.stringify({ sound: p.sound, volume: p.volume, desktop: p.desktop, silent: p.silent });
      buf = Buffer.from(`${sep}${this.body},"presentation":${presentation}}`);
      this.suffixes.set(key, buf);
    }
    this.lastPresentation = p;
    this.lastSuffix = buf;
    return buf;
  }

  frameFor(r: BroadcastRecipient): Frame {
    const seq = Number(r.seq);
    // Ids (UUIDs) and most user ids are plain: quoted as they are, a byte a character, without
    // JSON.stringify or a UTF-8 length scan (~0.5 us a recipient of ~1.7: bench/broadcast-frames.ts).
    const plain = PLAIN_JSON_TEXT.test(r.id) && PLAIN_JSON_TEXT.test(r.userId);
    const quote = plain ? quotePlain : JSON.stringify;
    const middle = `${quote(r.id)},"seq":${seq},"userId":${quote(r.userId)}`;
    const suffix = this.suffix(r.presentation);
    const middleLength = plain ? middle.length : Buffer.byteLength(middle);
    const length = BROADCAST_PREFIX.length + middleLength + suffix.length;
    const header = frameHeaderLength(length);
    const out = Buffer.allocUnsafe(header + length);
    writeFrameHeader(out, length, header);
    out.set(BROADCAST_PREFIX, header);
    // Ids and most user ids are ASCII: copied byte for byte, no UTF-8 encoder.
    out.write(middle, header + BROADCAST_PREFIX.length, middleLength, middleLength === middle.length ? "latin1" : "utf8");
    out.set(suffix, header + BROADCAST_PREFIX.length + middleLength);
    return new WireFrame(out, header, r.id, seq);
  }
}

/** Envelope headers; `o` is the origin instance, which already delivered locally. */
export type BusHeader =
  | { k: "u"; o: string; u: string; i?: string; s?: number }
  | { k: "b"; o: string; r: Array<[userId: string, id: string, seq: number, presentation: number]>; p: Presentation[] };

export function encodeEnvelope(header: BusHeader, payload: string): string {
  return `${JSON.stringify(header)}\n${payload}`;
}

/**
 * How every envelope from `origin` begins (`k` then `o` lead every header, as
 * `Fanout` and `broadcastHeader` build them): an instance recognises its own
 * echo by these few characters, without parsing a broadcast's header of up to
 * 10,000 recipients.
 */
export function originPrefixes(origin: string): readonly [string, string] {
  const o = JSON.stringify(origin);
  return [`{"k":"u","o":${o},`, `{"k":"b","o":${o},`];
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
