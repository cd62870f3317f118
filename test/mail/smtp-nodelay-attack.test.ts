/**
 * Attacks on TCP_NODELAY in the SMTP pool (smtp-pool.ts sendWithoutDelay):
 * connections upgraded by STARTTLS and implicit TLS must still get it on the
 * TCP socket under the TLS one, and still carry messages; servers that drop
 * the connection at the greeting or right after EHLO must fail the send
 * cleanly (nothing thrown elsewhere, nothing left hanging).
 */
import { type AddressInfo, type Server, type Socket, createServer } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterEach, describe, expect, it } from "vitest";
import { MailUnreachedError } from "../../src/mail/index.js";
import { SmtpPool } from "../../src/mail/smtp-pool.js";

interface TlsSink {
  port: number;
  /** Per message: the recipient and whether its session was under TLS. */
  received: { to: string; secure: boolean }[];
  connections: number;
  close(): Promise<void>;
}

/** smtp-server with its bundled self-signed certificate: STARTTLS offered, or implicit TLS (`secure`). */
async function startTlsSink(secure: boolean): Promise<TlsSink> {
  const sockets = new Set<Socket>();
  const server = new SMTPServer({
    secure,
    authOptional: true,
    disabledCommands: ["AUTH"],
    logger: false,
    closeTimeout: 200,
    onData(stream, session, cb) {
      stream.resume();
      stream.on("end", () => {
        api.received.push({ to: session.envelope.rcptTo[0]?.address ?? "", secure: Boolean(session.secure) });
        cb();
      });
    },
  });
  server.on("error", () => undefined);
  server.server.on("connection", (socket: Socket) => {
    api.connections++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.server.on("secureConnection", (socket: Socket) => {
    api.connections++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const api: TlsSink = {
    port: (server.server.address() as AddressInfo).port,
    received: [],
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return api;
}

/**
 * Records every setNoDelay that reaches a TCP handle (the native socket under
 * any net or TLS socket), with the handle's peer port at the time of the call.
 */
async function spyTcpNoDelay(): Promise<{ calls: { handle: object; peerPort: number | undefined; enable: boolean }[]; restore: () => void }> {
  // A TCP handle's prototype: the one a listening server's _handle has.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const proto = Object.getPrototypeOf((server as unknown as { _handle: object })._handle) as { setNoDelay: (enable: boolean) => number };
  await new Promise<void>((r) => server.close(() => r()));
  const original = proto.setNoDelay;
  const calls: { handle: object; peerPort: number | undefined; enable: boolean }[] = [];
  proto.setNoDelay = function (this: { getpeername: (out: { port?: number }) => number }, enable: boolean) {
    const out: { port?: number } = {};
    this.getpeername(out);
    calls.push({ handle: this, peerPort: out.port, enable });
    return original.call(this, enable);
  };
  return {
    calls,
    restore: () => {
      proto.setNoDelay = original;
    },
  };
}

const raw = (to: string) => Buffer.from(`From: herald@example.test\r\nTo: ${to}\r\nSubject: hi\r\nMessage-ID: <${to}>\r\n\r\nbody\r\n`);
const envelope = (to: string) => ({ from: "herald@example.test", to: [to] });

let sink: TlsSink | undefined;
let pool: SmtpPool | undefined;
let rawServer: Server | undefined;
const rawSockets = new Set<Socket>();
afterEach(async () => {
  pool?.close();
  pool = undefined;
  await sink?.close();
  sink = undefined;
  if (rawServer) {
    const s = rawServer;
    rawServer = undefined;
    for (const socket of rawSockets) socket.destroy();
    rawSockets.clear();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

describe("TCP_NODELAY under TLS", () => {
  for (const mode of ["STARTTLS", "implicit TLS"] as const) {
    it(`${mode}: every connection's TCP socket (peer = the server's port) gets TCP_NODELAY, and the messages go through under TLS`, async () => {
      sink = await startTlsSink(mode === "implicit TLS");
      const spy = await spyTcpNoDelay();
      try {
        pool = new SmtpPool({
          connection: {
            host: "127.0.0.1",
            port: sink.port,
            secure: mode === "implicit TLS",
            tls: { rejectUnauthorized: false },
            connectionTimeout: 5000,
            greetingTimeout: 5000,
            socketTimeout: 5000,
          },
          maxConnections: 2,
        });
        const to = ["a", "b", "c", "d"].map((x) => `${x}@example.test`);
        await Promise.all(to.map((t) => pool!.send(envelope(t), raw(t))));
        expect(sink.received.map((r) => r.to).sort()).toEqual(to);
        expect(sink.received.every((r) => r.secure)).toBe(true);
        const handles = new Set(spy.calls.filter((c) => c.peerPort === sink!.port && c.enable).map((c) => c.handle));
        expect(handles.size).toBe(2);
      } finally {
        spy.restore();
      }
    });
  }
});

/** A raw TCP server speaking just enough SMTP: `script` gets each accepted socket. */
async function startRaw(script: (socket: Socket) => void): Promise<number> {
  rawServer = createServer((socket) => {
    socket.on("error", () => undefined);
    rawSockets.add(socket);
    script(socket);
  });
  await new Promise<void>((r) => rawServer!.listen(0, "127.0.0.1", r));
  return (rawServer.address() as AddressInfo).port;
}

describe("servers that go away around the connect", () => {
  const poolAt = (port: number) =>
    new SmtpPool({
      connection: { host: "127.0.0.1", port, ignoreTLS: true, connectionTimeout: 2000, greetingTimeout: 2000, socketTimeout: 2000 },
      maxConnections: 1,
    });

  it("a server that closes right after its greeting: the send fails as unreached, nothing throws", async () => {
    const port = await startRaw((socket) => {
      socket.end("220 hello then bye\r\n");
    });
    pool = poolAt(port);
    const err = await pool.send(envelope("x@example.test"), raw("x@example.test")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MailUnreachedError);
  });

  it("a server that closes right after answering EHLO (the connect completes on a closing socket): the send fails, nothing throws, the pool recovers", async () => {
    let n = 0;
    const received: string[] = [];
    const port = await startRaw((socket) => {
      const nth = ++n;
      socket.write("220 ready\r\n");
      let buffer = "";
      let inData = false;
      socket.on("data", (chunk: Buffer) => {
        buffer += chunk.toString("latin1");
        for (let i = buffer.indexOf("\r\n"); i >= 0; i = buffer.indexOf("\r\n")) {
          const line = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          if (inData) {
            if (line === ".") {
              inData = false;
              received.push("message");
              socket.write("250 queued\r\n");
            }
            continue;
          }
          const verb = line.slice(0, 4).toUpperCase();
          if (verb === "EHLO") {
            if (nth === 1) socket.end("250 hi\r\n");
            else socket.write("250 hi\r\n");
          } else if (verb === "MAIL" || verb === "RCPT") socket.write("250 ok\r\n");
          else if (verb === "DATA") {
            inData = true;
            socket.write("354 go\r\n");
          } else if (verb === "QUIT") socket.end("221 bye\r\n");
          else socket.write("502 no\r\n");
        }
      });
    });
    pool = poolAt(port);
    const err = await pool.send(envelope("x@example.test"), raw("x@example.test")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    // The next message opens a new connection and goes through.
    await pool.send(envelope("y@example.test"), raw("y@example.test"));
    expect(received).toEqual(["message"]);
  });
});
