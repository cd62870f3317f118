/**
 * A model-based test of the inbox across devices (fast-check commands): a
 * plain in-memory model predicts, for each device, the notifications its SDK
 * client must have emitted (every live one exactly once per device across
 * drops and restarts, oldest first, none after its deletion) and the unread
 * count; each command runs against a real Herald with real `ws` clients
 * (PGlite, or PostgreSQL when DATABASE_URL is set) and waits for its effects
 * by event, so the state is quiet when the model is compared.
 *
 * Device commands: drop (the socket dies; the client's next attempt waits),
 * come back with the client's cursor (the same client reconnects), or restart
 * without a cursor (a new client with the same device id: the server's
 * device cursor stands in). Creations with in-app off must reach no device
 * and no count. Acks are the SDK's own (it acks all it receives);
 * a drop waits for them to be stored, so a restart cannot legitimately repeat.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { HeraldClient, type WebSocketConstructor } from "../../src/client/index.js";
import type { NotificationDto } from "../../src/protocol/index.js";
import { reconcileFirstPage } from "../../src/react/inbox.js";
import { type TestHerald, startTestHerald } from "../support/herald.js";
import { eventually } from "./helpers.js";

const DEVICES = 3;

let h: TestHerald;
beforeAll(async () => {
  h = await startTestHerald();
});
afterAll(async () => {
  await h?.stop();
});

interface Note { id: string; seq: number; read: boolean; archived: boolean; deleted: boolean }
interface Model { notes: Note[]; devices: Array<{ connected: boolean; expected: string[] }> }

class Device {
  client!: HeraldClient;
  readonly received: string[] = [];
  private sockets: WebSocket[] = [];
  private gate: { promise: Promise<void>; open: () => void } | undefined;
  private waiters = new Map<string, () => void>();

  constructor(readonly id: string, private readonly token: string) {}

  async start(): Promise<void> {
    const sockets = this.sockets;
    class Tracking extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { perMessageDeflate: false });
        sockets.push(this);
      }
    }
    const client = new HeraldClient({
      url: h.wsUrl,
      getToken: async () => {
        await this.gate?.promise;
        return this.token;
      },
      WebSocket: Tracking as unknown as WebSocketConstructor,
      deviceId: this.id,
      initialDelayMs: 1,
      maxDelayMs: 5,
      ackDelayMs: 5,
    });
    client.on("notification", (n) => {
      this.received.push(n.id);
      this.waiters.get(n.id)?.();
    });
    this.client = client;
    const synced = client.once("sync");
    client.connect();
    await synced;
  }

  /** Resolves once the client has emitted `id`. */
  got(id: string): Promise<void> {
    if (this.received.includes(id)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.set(id, resolve));
  }

  async drop(): Promise<void> {
    let open!: () => void;
    this.gate = { promise: new Promise<void>((r) => (open = r)), open };
    const lost = this.client.once("disconnect");
    this.sockets.at(-1)!.terminate();
    await lost;
  }

  async resumeWithCursor(): Promise<void> {
    const synced = this.client.once("sync");
    this.gate!.open();
    await synced;
  }

  async restartWithoutCursor(): Promise<void> {
    this.client.close();
    this.gate!.open();
    this.gate = undefined;
    await this.start();
  }
}

interface Real { userId: string; devices: Device[]; seqs: Map<string, number> }
type Cmd = fc.AsyncCommand<Model, Real>;

const live = (m: Model) => m.notes.filter((n) => !n.deleted);
const pick = (m: Model, k: number) => live(m)[k % live(m).length]!;

async function verify(m: Model, r: Real): Promise<void> {
  for (const [i, d] of r.devices.entries()) expect(d.received, `device ${i}`).toEqual(m.devices[i]!.expected);
  expect(await h.herald.notifications.getUnreadCount(r.userId)).toBe(live(m).filter((n) => !n.read && !n.archived).length);
}

class Create implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const n = (await h.herald.notifications.createAndSendNotification({ userId: r.userId, type: "new_message", title: "t", message: "m" })) as NotificationDto;
    r.seqs.set(n.id, n.seq);
    m.notes.push({ id: n.id, seq: n.seq, read: false, archived: false, deleted: false });
    await Promise.all(
      m.devices.map((d, i) => {
        if (!d.connected) return undefined;
        d.expected.push(n.id);
        return r.devices[i]!.got(n.id);
      }),
    );
    await verify(m, r);
  }
  toString = () => "create";
}

/** In-app off when created (delivery rule 4): no device ever receives it, live or on any resume, and it is never counted, even after in-app is back on. */
class CreateHidden implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const s = h.herald.notifications;
    await s.preferences.update(r.userId, { inAppEnabled: false });
    const n = (await s.createAndSendNotification({ userId: r.userId, type: "new_message", title: "hidden", message: "m" })) as NotificationDto;
    await s.preferences.update(r.userId, { inAppEnabled: true });
    r.seqs.set(n.id, n.seq);
    // Not in the model's notes: nothing may show it. A later live creation on the same sockets would come after it.
    await verify(m, r);
  }
  toString = () => "createHidden";
}

class Drop implements Cmd {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => m.devices[this.i]!.connected;
  async run(m: Model, r: Real): Promise<void> {
    const d = r.devices[this.i]!;
    const alive = new Set(live(m).map((n) => n.id));
    const top = Math.max(0, ...d.received.filter((id) => alive.has(id)).map((id) => r.seqs.get(id)!));
    // The SDK's acks of what it received reach the server's device cursor first (an ack of a deleted row moves nothing).
    if (top > 0) {
      await eventually(
        () => h.database.query<{ s: string }>("SELECT acked_seq AS s FROM device_cursors WHERE user_id = $1 AND device_id = $2", [r.userId, d.id]),
        (rows) => Number(rows[0]?.s ?? 0) >= top,
      );
    }
    await d.drop();
    m.devices[this.i]!.connected = false;
    await verify(m, r);
  }
  toString = () => `drop(${this.i})`;
}

class Return implements Cmd {
  constructor(readonly i: number, readonly withCursor: boolean) {}
  check = (m: Readonly<Model>) => !m.devices[this.i]!.connected;
  async run(m: Model, r: Real): Promise<void> {
    const d = r.devices[this.i]!;
    await (this.withCursor ? d.resumeWithCursor() : d.restartWithoutCursor());
    const dm = m.devices[this.i]!;
    dm.connected = true;
    const had = new Set(dm.expected);
    dm.expected.push(...live(m).filter((n) => !had.has(n.id)).sort((a, b) => a.seq - b.seq).map((n) => n.id));
    await verify(m, r);
  }
  toString = () => `return(${this.i}, ${this.withCursor ? "cursor" : "no cursor"})`;
}

class Change implements Cmd {
  constructor(readonly kind: "read" | "archive" | "delete", readonly k: number) {}
  check = (m: Readonly<Model>) => live(m as Model).length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const n = pick(m, this.k);
    const s = h.herald.notifications;
    if (this.kind === "read") expect(await s.markRead(r.userId, n.id)).toBe(true);
    if (this.kind === "archive") expect(await s.archive(r.userId, n.id)).toBe(true);
    if (this.kind === "delete") expect(await s.deleteNotification(r.userId, n.id)).toBe(true);
    if (this.kind === "read") n.read = true;
    if (this.kind === "archive") n.archived = true;
    if (this.kind === "delete") n.deleted = true;
    await verify(m, r);
  }
  toString = () => `${this.kind}(${this.k})`;
}

class ReadAll implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await h.herald.notifications.markAllRead(r.userId);
    for (const n of m.notes) n.read = true;
    await verify(m, r);
  }
  toString = () => "readAll";
}

class ArchiveAll implements Cmd {
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    await h.herald.notifications.archiveAll(r.userId);
    for (const n of m.notes) n.archived = true;
    await verify(m, r);
  }
  toString = () => "archiveAll";
}

const device = fc.nat(DEVICES - 1);
const commands = [
  fc.constant(new Create()),
  fc.constant(new Create()),
  fc.constant(new CreateHidden()),
  device.map((i) => new Drop(i)),
  fc.tuple(device, fc.boolean()).map(([i, c]) => new Return(i, c)),
  fc.tuple(fc.constantFrom("read" as const, "archive" as const, "delete" as const), fc.nat()).map(([kind, k]) => new Change(kind, k)),
  fc.constant(new ReadAll()),
  fc.constant(new ArchiveAll()),
];

let run = 0;

describe("inbox state machine across devices", () => {
  it("every device gets every live notification once, oldest first, across drops and restarts; the badge matches", async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25 }), async (cmds) => {
        const userId = `u-model-${++run}`;
        const token = await h.tokenFor(userId);
        const devices = Array.from({ length: DEVICES }, (_, i) => new Device(`m${run}-d${i}`, token));
        await Promise.all(devices.map((d) => d.start()));
        const model: Model = { notes: [], devices: devices.map(() => ({ connected: true, expected: [] })) };
        try {
          await fc.asyncModelRun(() => ({ model, real: { userId, devices, seqs: new Map() } }), cmds);
        } finally {
          for (const d of devices) d.client.close();
        }
      }),
      { numRuns: 30 },
    );
  }, 120_000);
});

describe("the hook's first-page reload", () => {
  const n = (seq: number, patch: Partial<NotificationDto> = {}) => ({ id: `id-${seq}`, seq, read: false, archived: false, createdAt: new Date(seq).toISOString() }) as NotificationDto & typeof patch;

  it("drops rows deleted or archived elsewhere, keeps live arrivals and older pages, and never doubles an id", () => {
    const list = [n(9), n(8), n(7), n(6), n(2), n(1)];
    // The fresh first page: 8 was deleted elsewhere, 10 arrived while offline; 9 arrived live during the request.
    const page = [n(10), n(7), n(6)];
    const out = reconcileFirstPage(page, list, "all", false, new Set(["id-9"]));
    expect(out.map((x) => x.seq)).toEqual([10, 9, 7, 6, 2, 1]);
    // A complete page is the whole inbox: older rows not in it are gone too.
    expect(reconcileFirstPage(page, list, "all", true, new Set()).map((x) => x.seq)).toEqual([10, 7, 6]);
  });
});
