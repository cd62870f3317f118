/**
 * SMS through a provider interface: a webhook provider that POSTs JSON to
 * SMS_WEBHOOK_URL (the operator's bridge to Twilio, Vonage...) and a log
 * provider, the default, that only writes the message to the log.
 */
import type { Logger } from "../observability/index.js";
import { type Channel, type ChannelJob, httpStatusError, permanent, retryable } from "./channel.js";
import { shortMessage } from "./render.js";
import { webhookSignatureHeaders } from "./webhook-signing.js";

export interface SmsMessage {
  to: string;
  title: string;
  message: string;
  /** The notification (or the first of a bundle): lets the receiver deduplicate retries. */
  notificationId: string;
}

export interface SmsProvider {
  readonly name: string;
  send(message: SmsMessage): Promise<void>;
}

export interface WebhookSmsOptions {
  url: string;
  /** Standard Webhooks secret (`whsec_...`) every request is signed with. */
  secret: string;
  /** The signing time (webhook-timestamp); the system clock by default. */
  now?: () => Date;
  /** Per-request timeout; a hung receiver is a retryable failure. */
  timeoutMs?: number;
}

/**
 * POSTs `{to, title, message, notificationId}`, signed (webhook-signing.ts);
 * 2xx is success, 5xx/429 retryable, other 4xx permanent.
 */
export class WebhookSmsProvider implements SmsProvider {
  readonly name = "webhook";
  constructor(private readonly options: WebhookSmsOptions) {}

  async send(message: SmsMessage): Promise<void> {
    const body = JSON.stringify(message);
    const seconds = Math.floor((this.options.now?.() ?? new Date()).getTime() / 1000);
    // The id is the notification's: a retry is the same message, and the receiver may deduplicate on it.
    const signature = webhookSignatureHeaders(this.options.secret, `msg_${message.notificationId}`, seconds, body);
    let res: Response;
    try {
      res = await fetch(this.options.url, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": message.notificationId, ...signature },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
    } catch (err) {
      throw retryable("network", `SMS webhook unreachable: ${(err as Error).message}`, err);
    }
    const answer = await res.text().catch(() => "");
    if (!res.ok) throw httpStatusError(res.status, "SMS webhook", answer);
  }
}

/** Writes each SMS to the log: the zero-configuration default. */
export class LogSmsProvider implements SmsProvider {
  readonly name = "log";
  constructor(private readonly logger: Logger) {}
  async send(message: SmsMessage): Promise<void> {
    this.logger.info({ sms: message }, "sms (log provider)");
  }
}

/** SMS cannot carry much: the title and message, cut to a sane length. */
const SMS_MAX = 480;

export class SmsChannel implements Channel {
  readonly name = "sms" as const;
  constructor(
    private readonly provider: SmsProvider,
    private readonly appUrl: string,
  ) {}

  async send(job: ChannelJob): Promise<void> {
    const to = job.recipient.phone?.trim();
    if (!to) throw permanent("no_recipient", `user ${job.recipient.userId} has no phone number`);
    const short = shortMessage(this.appUrl, job.notifications);
    const message = short.body.length > SMS_MAX ? `${short.body.slice(0, SMS_MAX - 3)}...` : short.body;
    await this.provider.send({ to, title: short.title, message, notificationId: job.notifications[0]!.id });
  }
}
