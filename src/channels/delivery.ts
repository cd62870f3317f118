/**
 * Builds the out-of-app delivery of one process from its configuration: the
 * three channels (e-mail through the process's one mailer, Web Push with
 * VAPID keys from config or DATA_DIR, SMS through the webhook or the log
 * provider) and the queue worker that drives them. The composition root starts and stops it.
 *
 * Waking: the migration's trigger on notification_queue sends NOTIFY
 * herald_queue when a statement queues a send that is due now; every
 * instance LISTENs (this process's own inserts come back the same way, about
 * a millisecond later), so an immediate send starts without waiting for the
 * poll, which stays as the safety net for a lost connection or notification.
 */
import { type Mailer, createMailer, mailerOptions } from "../mail/index.js";
import type { AnalyticsIngest } from "../analytics/index.js";
import type { Config } from "../config/index.js";
import type { Database } from "../db/index.js";
import type { Clock, Logger } from "../observability/index.js";
import type { Registry } from "prom-client";
import type { Channel, OutOfAppChannelName } from "./channel.js";
import { EmailChannel } from "./email.js";
import { PushChannel } from "./push.js";
import { LogSmsProvider, SmsChannel, type SmsProvider, WebhookSmsProvider } from "./sms.js";
import { loadVapidKeys } from "./vapid.js";
import { loadWebhookSecret } from "./webhook-signing.js";
import { DeliveryWorker, type DeliveryWorkerOptions } from "./worker.js";

export interface DeliveryDeps {
  config: Config;
  database: Database;
  clock: Clock;
  logger: Logger;
  metrics: Registry;
  /** Names this process in queue claims. */
  instanceId: string;
  analytics: AnalyticsIngest;
  unsubscribeKey: Buffer;
}

export interface DeliveryOverrides extends Partial<Omit<DeliveryWorkerOptions, "database" | "channels" | "clock" | "logger" | "metrics">> {
  /** The process's one mailer, shared with the digests; its owner closes it. Without it, one is built from config and closed by stop(). */
  mailer?: Mailer;
  smsProvider?: SmsProvider;
  channels?: Partial<Record<OutOfAppChannelName, Channel>>;
}

/** The channel the queue's trigger notifies (migration 0013). */
export const QUEUE_WAKE_CHANNEL = "herald_queue";

export class OutOfAppDelivery {
  readonly worker: DeliveryWorker;
  private readonly ownedMailer: Mailer | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private readonly database: Database;
  private readonly logger: Logger;

  constructor(deps: DeliveryDeps, overrides: DeliveryOverrides = {}) {
    const { config, database, logger } = deps;
    this.ownedMailer = overrides.mailer ? undefined : createMailer(mailerOptions(config));
    const mailer = overrides.mailer ?? this.ownedMailer!;
    const sms = overrides.smsProvider ?? (config.smsWebhookUrl ? new WebhookSmsProvider({ url: config.smsWebhookUrl, secret: loadWebhookSecret(config), now: () => deps.clock.now() }) : new LogSmsProvider(logger));
    const channels: Partial<Record<OutOfAppChannelName, Channel>> = {
      email: new EmailChannel({ mailer, appUrl: config.appUrl, unsubscribeKey: deps.unsubscribeKey }),
      push: new PushChannel({
        database,
        vapid: loadVapidKeys(config),
        appUrl: config.appUrl,
        logger,
        clock: deps.clock,
        timeoutMs: config.push.timeoutMs,
        allowPrivate: config.push.allowPrivate,
      }),
      sms: new SmsChannel(sms, config.appUrl),
      ...overrides.channels,
    };
    const { mailer: _m, smsProvider: _s, channels: _c, ...workerOptions } = overrides;
    this.worker = new DeliveryWorker({
      database,
      channels,
      clock: deps.clock,
      logger,
      metrics: deps.metrics,
      analytics: deps.analytics,
      workerId: deps.instanceId,
      ...workerOptions,
    });
    this.database = database;
    this.logger = logger;
  }

  /** Listens for wakes, then starts the worker; without a listening connection it still runs, on the poll. */
  async start(): Promise<void> {
    if (this.worker.status === "active") return;
    try {
      this.unlisten = await this.database.listen(QUEUE_WAKE_CHANNEL, () => this.worker.notify());
    } catch (err) {
      this.logger.warn({ err }, "delivery worker cannot LISTEN for new sends; it polls only");
    }
    this.worker.start();
  }

  /** Wakes the worker now (rows were enqueued by a path the trigger does not see). */
  notify(): void {
    this.worker.notify();
  }

  async stop(): Promise<void> {
    await this.unlisten?.().catch((err: unknown) => this.logger.warn({ err }, "UNLISTEN failed"));
    this.unlisten = undefined;
    await this.worker.stop();
    await this.ownedMailer?.close();
  }
}
