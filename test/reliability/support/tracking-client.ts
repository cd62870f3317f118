/**
 * The SDK (herald/client) over `ws`, with a tap on the wire: the tap counts
 * every notification id each frame carries (wire duplicates: the same id
 * sent again, e.g. after a crash lost the delivered mark), and the SDK's
 * `notification` events are what a user sees (user-visible duplicates).
 */
import WebSocket from "ws";
import { HeraldClient } from "../../../src/client/index.js";

export interface TrackedUser {
  userId: string;
  client: HeraldClient;
  /** Ids shown to the user, with how many times each was shown. */
  shown: Map<string, number>;
  /** Ids carried on the wire, with how many frames carried each. */
  wire: Map<string, number>;
  closes: number[];
  /** Cuts the current connection as a network failure would; the SDK reconnects by itself. */
  drop(): void;
  userDuplicates(): number;
  wireDuplicates(): number;
}

/**
 * `wsUrl` is the server's base URL, or a function read at every (re)connect:
 * a stand-in for a load balancer that routes new connections to a live instance.
 */
export function trackUser(wsUrl: string | (() => string), userId: string, token: string): TrackedUser {
  const BALANCER = "ws://balancer.invalid";
  const wire = new Map<string, number>();
  const shown = new Map<string, number>();
  const closes: number[] = [];
  let current: WebSocket | undefined;
  class TapSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(typeof wsUrl === "function" ? url.replace(BALANCER, wsUrl()) : url, protocols);
      current = this;
      this.on("message", (raw) => {
        let m: { type?: string; notification?: { id: string }; notifications?: { id: string }[] };
        try {
          m = JSON.parse(raw.toString());
        } catch {
          return;
        }
        const ids = m.type === "notification" ? [m.notification!.id] : m.type === "sync" ? m.notifications!.map((n) => n.id) : [];
        for (const id of ids) wire.set(id, (wire.get(id) ?? 0) + 1);
      });
    }
  }
  const client = new HeraldClient({ url: `${typeof wsUrl === "function" ? BALANCER : wsUrl}/ws`, token, WebSocket: TapSocket as never, initialDelayMs: 100, maxDelayMs: 1_000, ackDelayMs: 20 });
  client.on("notification", (n) => shown.set(n.id, (shown.get(n.id) ?? 0) + 1));
  client.on("disconnect", ({ code }) => closes.push(code));
  client.connect();
  const extra = (m: Map<string, number>) => [...m.values()].reduce((a, c) => a + (c - 1), 0);
  const drop = () => current?.terminate();
  return { userId, client, shown, wire, closes, drop, userDuplicates: () => extra(shown), wireDuplicates: () => extra(wire) };
}
