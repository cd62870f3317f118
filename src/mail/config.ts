/**
 * The mailer's options from configuration, in one place: SMTP when
 * EMAIL_HOST is set, otherwise `.eml` files in DATA_DIR/outbox.
 */
import path from "node:path";
import type { Config } from "../config/index.js";
import type { OutboxMailerOptions, SmtpMailerOptions } from "./mailer.js";

/**
 * @example
 * const mailer = createMailer(mailerOptions(config)); // one per process, closed after its users stop
 */
export function mailerOptions(config: Pick<Config, "email" | "dataDir" | "digestTuning">): SmtpMailerOptions | OutboxMailerOptions {
  const e = config.email;
  if (!e.host) return { outboxDir: path.resolve(config.dataDir, "outbox"), from: e.from };
  // HERALD_SMTP_TIMEOUT_MS sits with the digest knobs in Config, but it is the transport's: one mailer, one timeout.
  const timeoutMs = config.digestTuning.smtpTimeoutMs;
  return {
    host: e.host,
    port: e.port,
    secure: e.secure,
    ...(e.user && e.pass ? { auth: { user: e.user, pass: e.pass } } : {}),
    from: e.from,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  };
}
