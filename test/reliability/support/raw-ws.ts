/**
 * A WebSocket client written on a bare TCP socket, for what a well-behaved
 * library refuses to send: reserved opcodes, thousands of headers, a peer
 * that never reads.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { type Socket, connect } from "node:net";

export interface RawSocket {
  socket: Socket;
  /** The HTTP status line and headers of the upgrade answer. */
  head: string;
  status: number;
  /** Bytes received after the upgrade answer. */
  rest(): Buffer;
  /** One masked frame. */
  frame(opcode: number, payload: Buffer, fin?: boolean): void;
  /** The code of the server's close frame, when one arrives (or the socket ends). */
  closeCode(timeoutMs?: number): Promise<number | undefined>;
}

export async function rawUpgrade(port: number, path: string, extraHeaderLines: string[] = [], options: { read?: boolean } = {}): Promise<RawSocket> {
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  const key = randomBytes(16).toString("base64");
  socket.write(
    [
      `GET ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      ...extraHeaderLines,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      "",
      "",
    ].join("\r\n"),
  );
  let buf = Buffer.alloc(0);
  let headEnd = -1;
  const listeners = new Set<() => void>();
  const onData = (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    for (const l of [...listeners]) l();
  };
  socket.on("data", onData);
  socket.on("error", () => undefined);
  let ended = false;
  socket.on("close", () => {
    ended = true;
    for (const l of [...listeners]) l();
  });
  await new Promise<void>((resolve) => {
    const check = () => {
      headEnd = buf.indexOf("\r\n\r\n");
      if (headEnd >= 0 || ended) {
        listeners.delete(check);
        resolve();
      }
    };
    listeners.add(check);
    check();
  });
  const head = headEnd >= 0 ? buf.subarray(0, headEnd).toString("latin1") : buf.toString("latin1");
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  const bodyStart = headEnd >= 0 ? headEnd + 4 : buf.length;
  if (options.read === false) {
    // From now on this peer reads nothing: the kernel buffers fill and the server's write buffer grows.
    socket.off("data", onData);
    socket.pause();
  }
  return {
    socket,
    head,
    status,
    rest: () => buf.subarray(bodyStart),
    frame(opcode, payload, fin = true) {
      const mask = randomBytes(4);
      const len = payload.length;
      const header =
        len < 126
          ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | len])
          : len < 65536
            ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, len >> 8, len & 255])
            : Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 127]), (() => {
                const b = Buffer.alloc(8);
                b.writeBigUInt64BE(BigInt(len));
                return b;
              })()]);
      const masked = Buffer.from(payload);
      for (let i = 0; i < masked.length; i++) masked[i]! ^= mask[i % 4]!;
      socket.write(Buffer.concat([header, mask, masked]));
    },
    closeCode(timeoutMs = 10_000) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => done(), timeoutMs);
        const check = () => {
          // Walk the server's frames (unmasked) looking for a close (opcode 8).
          let data = buf.subarray(bodyStart);
          while (data.length >= 2) {
            const op = data[0]! & 0x0f;
            let len = data[1]! & 0x7f;
            let off = 2;
            if (len === 126) {
              if (data.length < 4) break;
              len = data.readUInt16BE(2);
              off = 4;
            } else if (len === 127) {
              if (data.length < 10) break;
              len = Number(data.readBigUInt64BE(2));
              off = 10;
            }
            if (data.length < off + len) break;
            if (op === 8) return done(len >= 2 ? data.readUInt16BE(off) : 1005);
            data = data.subarray(off + len);
          }
          if (ended) done();
        };
        const done = (code?: number) => {
          clearTimeout(timer);
          listeners.delete(check);
          resolve(code);
        };
        listeners.add(check);
        check();
      });
    },
  };
}
