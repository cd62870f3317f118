/** A loopback SMTP server that accepts and counts (reads every byte, stores nothing): the far end of e-mail in the benches. */
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";

export interface SmtpSink {
  port: number;
  readonly accepted: number;
  readonly bytes: number;
  reset(): void;
  close(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  let accepted = 0;
  let bytes = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    closeTimeout: 1000,
    onData(stream, _session, cb) {
      stream.on("data", (c: Buffer) => (bytes += c.length));
      stream.on("end", () => {
        accepted++;
        cb();
      });
    },
  });
  server.on("error", () => undefined);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.server.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    get bytes() {
      return bytes;
    },
    reset() {
      accepted = 0;
      bytes = 0;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
