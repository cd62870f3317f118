/**
 * The WebSocket server clears Node's private `_peername` cache on each
 * upgraded socket once the session row has the address (src/realtime/server.ts
 * onOpen): one object less per idle connection. This pins the Node behaviour
 * that relies on, so a Node release that changes it fails here, not silently:
 * reading `remoteAddress` caches the peer in `_peername`, and after the cache
 * is cleared the address is fetched again, unchanged.
 */
import { type AddressInfo, createConnection, createServer, type Socket } from "node:net";
import { expect, it } from "vitest";

it("Node caches the peer address in _peername and fetches it again once cleared", async () => {
  const accepted = new Promise<Socket>((resolve) => {
    const server = createServer(resolve);
    server.listen(0, "127.0.0.1", () => {
      const client = createConnection((server.address() as AddressInfo).port, "127.0.0.1");
      client.on("connect", () => server.close());
    });
  });
  const socket = await accepted;
  try {
    const cache = socket as Socket & { _peername?: unknown };
    expect(cache._peername).toBeUndefined();
    expect(socket.remoteAddress).toBe("127.0.0.1");
    expect(cache._peername).toMatchObject({ address: "127.0.0.1" });
    cache._peername = undefined;
    expect(socket.remoteAddress).toBe("127.0.0.1");
  } finally {
    socket.destroy();
  }
});
