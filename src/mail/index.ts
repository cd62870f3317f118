/** Sending e-mail: `createMailer` (pooled SMTP or `.eml` outbox), HTML escaping, SMTP error classification. */
export { createMailer } from "./mailer.js";
export type { Mailer, MailMessage, MailResult, OutboxMailerOptions, SmtpMailerOptions } from "./mailer.js";
export { escapeHtml } from "./escape.js";
export { MailFencedError, classifyMailError } from "./errors.js";
export type { MailFailure } from "./errors.js";
