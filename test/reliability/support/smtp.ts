/**
 * A scripted SMTP server on loopback (smtp-server) for the e-mail faults:
 * it records every message whose body it received, answered or not (a body
 * received and never answered may still be delivered, RFC 1047), and can
 * hold its answers until told, stall forever, drop the connection after
 * DATA, or go away and come back on the same port.
 */
import type { AddressInfo } from "node:net";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

export interface ReceivedMail {
  to: string;
  messageId: string;
  digestId: string;
  text: string;
  receivedAt: number;
  /** "accepted" (250 sent), "held" (answer pending), "stalled" (never answered), "dropped" (connection closed instead). */
  answer: "accepted" | "held" | "stalled" | "dropped";
}

/** What to do with a message once its body is in: answer at once, hold the answer, never answer, or drop the connection. */
export type Script = (mail: ReceivedMail) => "accept" | "hold" | "stall" | "drop";

export interface ScriptedSmtp {
  readonly port: number;
  readonly received: ReceivedMail[];
  script: Script;
  /** Answers 250 to every held message. */
  releaseHeld(): void;
  /** Resolves when `check(received)` holds (rejects after `ms`). */
  until(check: (received: ReceivedMail[]) => boolean, ms?: number, what?: string): Promise<void>;
  /** Stops listening and drops every connection (the port then refuses). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/** Ports below Linux's ephemeral range: nothing that listens on port 0 takes ours while it is down. */
function randomFixedPort(): number {
  return 20_000 + Math.floor(Math.random() * 10_000);
}

export async function startScriptedSmtp(script: Script = () => "accept"): Promise<ScriptedSmtp> {
  const received: ReceivedMail[] = [];
  const held: (() => void)[] = [];
  const waiters = new Set<() => void>();
  const changed = () => {
    for (const w of [...waiters]) w();
  };
  let server: SMTPServer | undefined;

  const make = () => {
    const s = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS", "AUTH"],
      logger: false,
      closeTimeout: 200,
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => {
          simpleParser(Buffer.concat(chunks)).then((parsed) => {
            const header = (name: string) => String(parsed.headers.get(name) ?? "");
            const mail: ReceivedMail = {
              to: session.envelope.rcptTo[0]?.address ?? "",
              messageId: parsed.messageId ?? "",
              digestId: header("x-herald-digest-id"),
              text: parsed.text ?? "",
              receivedAt: Date.now(),
              answer: "accepted",
            };
            const action = api.script(mail);
            received.push(mail);
            if (action === "accept") cb();
            else if (action === "hold") {
              mail.answer = "held";
              held.push(() => {
                mail.answer = "accepted";
                cb();
              });
            } else if (action === "stall") mail.answer = "stalled";
            else {
              mail.answer = "dropped";
              // Closed with the body in and no reply (the session's id is its connection's).
              const connections = (s as unknown as { connections: Set<{ id: string; _socket: { destroy(): void } }> }).connections;
              for (const c of connections) if (c.id === session.id) c._socket.destroy();
            }
            changed();
          }, cb);
        });
      },
    });
    // Clients that give up on a stalled or dropped transaction surface here; expected.
    s.on("error", () => undefined);
    return s;
  };

  const listen = async (port: number) => {
    const s = make();
    await new Promise<void>((resolve, reject) => {
      s.server.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        s.server.off("error", reject);
        resolve();
      });
    });
    server = s;
    return (s.server.address() as AddressInfo).port;
  };

  let port = 0;
  for (let tries = 0; ; tries++) {
    try {
      port = await listen(randomFixedPort());
      break;
    } catch (err) {
      if (tries > 20) throw err;
    }
  }

  const down = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  const api: ScriptedSmtp = {
    port,
    received,
    script,
    releaseHeld() {
      for (const release of held.splice(0)) release();
      changed();
    },
    until(check, ms = 30_000, what = "condition") {
      if (check(received)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(test);
          reject(new Error(`timed out waiting for ${what}; received ${received.length}`));
        }, ms);
        const test = () => {
          if (!check(received)) return;
          clearTimeout(timer);
          waiters.delete(test);
          resolve();
        };
        waiters.add(test);
      });
    },
    down,
    async up() {
      if (!server) await listen(port);
    },
    async close() {
      held.splice(0);
      await down();
    },
  };
  return api;
}

/** Per recipient: how many copies arrived, and how many distinct Message-IDs they carried. */
export function copiesByRecipient(received: ReceivedMail[]): Map<string, { copies: number; messageIds: Set<string> }> {
  const out = new Map<string, { copies: number; messageIds: Set<string> }>();
  for (const m of received) {
    let e = out.get(m.to);
    if (!e) {
      e = { copies: 0, messageIds: new Set() };
      out.set(m.to, e);
    }
    e.copies++;
    e.messageIds.add(m.messageId);
  }
  return out;
}
