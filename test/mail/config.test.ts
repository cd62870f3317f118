/** The one mailer's options from configuration (src/mail/config.ts). */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { mailerOptions } from "../../src/mail/index.js";

describe("mailerOptions", () => {
  it("SMTP from EMAIL_*, with the SMTP timeout and the login only when both halves are set", () => {
    const base = { NODE_ENV: "test", EMAIL_HOST: "smtp.example.test", EMAIL_PORT: "2525", EMAIL_FROM: "Herald <h@example.test>" };
    expect(mailerOptions(loadConfig({ ...base, EMAIL_USER: "u", EMAIL_PASS: "p", HERALD_SMTP_TIMEOUT_MS: "1500" }))).toEqual({
      host: "smtp.example.test",
      port: 2525,
      secure: false,
      auth: { user: "u", pass: "p" },
      from: "Herald <h@example.test>",
      timeoutMs: 1500,
    });
    expect(mailerOptions(loadConfig({ ...base, EMAIL_USER: "u" }))).toEqual({ host: "smtp.example.test", port: 2525, secure: false, from: "Herald <h@example.test>" });
  });

  it("without EMAIL_HOST, .eml files in DATA_DIR/outbox", () => {
    expect(mailerOptions(loadConfig({ NODE_ENV: "test", DATA_DIR: "/var/lib/herald" }))).toEqual({ outboxDir: path.resolve("/var/lib/herald", "outbox"), from: "Herald <noreply@herald.local>" });
  });
});
