/** Sending e-mail: `createMailer` (pooled SMTP or `.eml` outbox) and its options from config, HTML escaping, SMTP error classification. */
export { mailerOptions } from "./config.js";
export { createMailer } from "./mailer.js";
export type { Mailer, MailMessage, MailResult, OutboxMailerOptions, SmtpMailerOptions } from "./mailer.js";
export { escapeHtml } from "./escape.js";
export { MailFencedError, MailUnreachedError, classifyMailError } from "./errors.js";
export type { MailFailure } from "./errors.js";
export { oneClickUnsubscribeHeaders, unsubscribeKey, unsubscribeToken, unsubscribeUrl, verifyUnsubscribeToken } from "./unsubscribe.js";
