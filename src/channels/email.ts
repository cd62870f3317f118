/**
 * Single-notification e-mail (and hourly bundles) through the shared mailer
 * (src/mail), the same transport, escaping and SMTP error classification the
 * digests use: a 5xx reply (the mailbox does not exist) is permanent; 4xx and
 * connection trouble are retried. Each carries the recipient's signed
 * one-click unsubscribe link (RFC 8058), in its headers and its footer.
 */
import { type Mailer, MailFencedError, classifyMailError, escapeHtml, oneClickUnsubscribeHeaders, unsubscribeUrl } from "../mail/index.js";
import { type Channel, type ChannelJob, fenced, permanent, retryable } from "./channel.js";
import { renderEmail } from "./render.js";

export interface EmailChannelOptions {
  mailer: Pick<Mailer, "send">;
  appUrl: string;
  /** Signs unsubscribe links (the runtime's, shared with digests and the unsubscribe route). */
  unsubscribeKey: Buffer;
}

export class EmailChannel implements Channel {
  readonly name = "email" as const;
  private readonly host: string;
  constructor(private readonly options: EmailChannelOptions) {
    this.host = new URL(options.appUrl).hostname || "herald.local";
  }

  async send(job: ChannelJob): Promise<void> {
    const to = job.recipient.email?.trim();
    if (!to) throw permanent("no_recipient", `user ${job.recipient.userId} has no e-mail address`);
    const unsubscribe = unsubscribeUrl(this.options.appUrl, this.options.unsubscribeKey, job.recipient.userId);
    const mail = renderEmail(this.options.appUrl, job.notifications, escapeHtml, unsubscribe);
    let accepted: readonly unknown[];
    try {
      ({ accepted } = await this.options.mailer.send({
        to,
        ...mail,
        // Stable per queue row: a retry after an ambiguous failure carries the
        // same Message-ID, so receiving systems can drop the duplicate.
        messageId: `<${job.queueId}@${this.host}>`,
        headers: {
          "X-Herald-Notification": job.notifications.map((n) => n.id).join(","),
          "Auto-Submitted": "auto-generated",
          ...oneClickUnsubscribeHeaders(unsubscribe),
        },
        // Asked when a pooled connection takes the message: one that waited
        // for a connection until its lease nearly ran out is not started.
        mayStart: job.mayStart,
      }));
    } catch (err) {
      if (err instanceof MailFencedError) throw fenced(err.message, err);
      const failure = classifyMailError(err);
      const code = failure.responseCode === undefined ? "smtp" : `smtp_${failure.responseCode}`;
      const message = `SMTP: ${failure.message}`;
      throw failure.retryable ? retryable(code, message, err) : permanent(code, message, err);
    }
    if (accepted.length === 0) throw permanent("rejected", `SMTP server accepted no recipient for ${to}`);
  }
}
