/**
 * A scripted SMTP server on loopback (smtp-server) for the mailer's own
 * tests: it counts connections (opened, open at once), records every body it
 * received, and per body answers at once, drops the connection instead of
 * answering, or never answers.
 */
import { type AddressInfo, type Socket, createServer } from "node:net";
import { SMTPServer } from "smtp-server";

export type Answer = "accept" | "drop" | "stall";

export interface ScriptedSmtp {
  port: number;
  /** The recipient of every body received, answered or not, in order. */
  bodies: string[];
  /** Connections opened so far. */
  connections: number;
  /** The most connections open at once. */
  mostOpen: number;
  close(): Promise<void>;
}

export async function startScriptedSmtp(
  options: {
    answer?: (to: string, nth: number) => Answer;
    answerDelayMs?: number;
    /** A reply code refusing the nth connection's greeting (counted from 1). */
    greeting?: (nth: number) => number | undefined;
    /** The server closes connections idle this long. */
    idleTimeoutMs?: number;
    /** Offers AUTH (over plain text, loopback only) and takes these credentials only. */
    auth?: { user: string; pass: string };
  } = {},
): Promise<ScriptedSmtp> {
  const sockets = new Map<number, Socket>();
  let open = 0;
  const server = new SMTPServer({
    authOptional: !options.auth,
    allowInsecureAuth: true,
    disabledCommands: options.auth ? ["STARTTLS"] : ["STARTTLS", "AUTH"],
    logger: false,
    onAuth(auth, _session, cb) {
      const ok = auth.username === options.auth?.user && auth.password === options.auth?.pass;
      cb(ok ? null : Object.assign(new Error("Invalid credentials"), { responseCode: 535 }), ok ? { user: auth.username } : undefined);
    },
    closeTimeout: 200,
    ...(options.idleTimeoutMs ? { socketTimeout: options.idleTimeoutMs } : {}),
    onConnect(_session, cb) {
      const code = options.greeting?.(api.connections);
      cb(code ? Object.assign(new Error("Too busy, try later"), { responseCode: code }) : null);
    },
    onData(stream, session, cb) {
      stream.resume();
      stream.on("end", () => {
        const to = session.envelope.rcptTo[0]?.address ?? "";
        const nth = api.bodies.filter((b) => b === to).length;
        api.bodies.push(to);
        const answer = options.answer?.(to, nth) ?? "accept";
        if (answer === "drop") sockets.get(session.remotePort)?.destroy();
        else if (answer === "accept") setTimeout(() => cb(), options.answerDelayMs ?? 0);
      });
    },
  });
  // Connections the client gave up on, or that we dropped, surface here; expected.
  server.on("error", () => undefined);
  server.server.on("connection", (socket: Socket) => {
    api.connections++;
    api.mostOpen = Math.max(api.mostOpen, ++open);
    const port = socket.remotePort!;
    sockets.set(port, socket);
    socket.once("close", () => {
      open--;
      sockets.delete(port);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const api: ScriptedSmtp = {
    port: (server.server.address() as AddressInfo).port,
    bodies: [],
    connections: 0,
    mostOpen: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets.values()) s.destroy();
        server.close(() => resolve());
      }),
  };
  return api;
}

/** A port nothing listens on: listen, note the port, close. */
export async function refusingPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
