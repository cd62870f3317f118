/**
 * NotificationService: the guide's API. Creation decides delivery with the
 * delivery rules (docs/delivery.md; src/preferences/delivery-rules.ts), writes the row
 * (and its out-of-app queue rows) in one statement, then hands the committed
 * notification to the WebSocket server. Inbox operations live in inbox.ts,
 * templates in templates.ts, SQL in sql.ts.
 *
 * Promises and limits:
 * - Idempotency is per (user, key) and outlives the notification
 *   (idempotency.ts): a replay answers the first notification, or says it was
 *   deleted, and pushes nothing again; other content with the key is a 409.
 * - Out-of-app sends (e-mail, push, SMS) are written as notification_queue rows
 *   (channel, next_retry_at, payload.mode = now | hold_until | hourly) in the
 *   same statement as the notification; the channel workers send them.
 *   Broadcasts queue them per recipient by each one's preferences, in the
 *   broadcast's transaction (broadcast.ts).
 */
import { enqueueOutOfApp, singleSendRows } from "../channels/index.js";
import { HeraldError } from "../errors/index.js";
import { type DeliveryRuleOptions, PreferencesService, decideDelivery } from "../preferences/index.js";
import type { InboxActions, RealtimePublisher } from "./publisher.js";
import { type AddressedChannel, type DeliveryWarning, RecipientReader, deliveryWarnings, timezoneCacheKey } from "../users/index.js";
import { writeBroadcast } from "./broadcast.js";
import type { NotificationDeps } from "./deps.js";
import { NotificationInsertBatcher, insertNotifications } from "./group-insert.js";
import { type CreateOutcome, IDEMPOTENCY_RETENTION_MS, replay, requestHash } from "./idempotency.js";
import { type GetNotificationsOptions, Inbox, type NotificationPage, type StateChange } from "./inbox.js";
import {
  type BroadcastInput,
  type CreateNotificationInput,
  contentParams,
  notificationContentSchema,
  parseCreation,
  parseOrThrow,
  type TemplateVariables,
} from "./input.js";
import { PURGE_IDEMPOTENCY_KEYS, SELECT_TIMEZONE } from "./sql.js";
import { NotificationTemplates } from "./templates.js";
import { defaultPriorityOf, type NotificationDto, type Priority, toNotificationDto, withJson } from "./types.js";



export interface BroadcastResult {
  count: number;
  broadcastId: string;
}

/** `create`'s answer; `warnings` only when asked for (CreateOptions) and only on a new notification. */
export type CreateResult = CreateOutcome & { warnings?: DeliveryWarning[] };

export interface CreateOptions {
  /**
   * Also say which channels the delivery rules chose that cannot reach the
   * user (no directory entry, address, phone or push subscription): the
   * directory part is cached (src/users RecipientReader), push subscriptions
   * are counted when push was chosen, beside the insert. The notification is
   * created either way.
   */
  deliveryWarnings?: boolean;
  /**
   * The caller never changes the notification it gets back (the REST route,
   * which serializes it and drops it): its JSON is then written once and
   * shared by its push frame and the caller (withJson). Without it the text
   * is not kept: a library caller's DTO is its own to change, and a frame it
   * builds from it later (publishNotification, publishToUser) says what it
   * says then.
   */
  serializeOnce?: boolean;
}

export interface FromTemplateOptions {
  idempotencyKey?: string;
  relatedId?: string | null;
  data?: Record<string, unknown> | null;
}

const TIMEZONE_TTL_SECONDS = 3600;
/** Attempts of each out-of-app send before it is marked failed. */
const MAX_SEND_ATTEMPTS = 5;
const PURGE_EVERY_MS = 3600_000;

export class NotificationService implements InboxActions {
  readonly deps: NotificationDeps;
  readonly preferences: PreferencesService;
  readonly templates: NotificationTemplates;
  private readonly inbox: Inbox;
  private readonly recipients: RecipientReader;
  private batcher: NotificationInsertBatcher | undefined;
  private lastPurge: number | undefined;
  private readonly deliveryRules: DeliveryRuleOptions;

  constructor(
    readonly realtime: RealtimePublisher,
    deps: NotificationDeps,
  ) {
    this.deps = deps;
    this.deliveryRules = deps.config ? { emailUnseenDelayMs: deps.config.emailUnseenDelayMs } : {};
    this.preferences = new PreferencesService(this.deps);
    this.templates = new NotificationTemplates(this.deps);
    this.inbox = new Inbox(this.deps, realtime);
    this.recipients = new RecipientReader(this.deps);
    // A `read` sent over a socket takes the same path as PATCH /api/notifications/:id.
    realtime.useInbox(this);
  }

  /**
   * Creates one notification for `input.userId` and pushes it to the user's
   * live connections. Returns null when the user switched this type off
   * (delivery rule 1: nothing is stored or delivered), except for
   * `security_alert` and `critical`, which cannot be switched off. With an
   * `idempotencyKey` already used for this user, returns the first
   * notification and writes nothing (null if the user deleted it since; other
   * content with the same key is a HERALD_CONFLICT). `create` says which.
   */
  async createAndSendNotification(input: CreateNotificationInput): Promise<NotificationDto | null> {
    const outcome = await this.create(input);
    return "notification" in outcome ? outcome.notification : null;
  }

  /**
   * Like createAndSendNotification, with what happened: created, replayed,
   * deleted (a replay) or type_disabled; with `deliveryWarnings`, a created
   * notification also carries the channels that cannot reach the user.
   */
  async create(input: CreateNotificationInput, options: CreateOptions = {}): Promise<CreateResult> {
    const n = parseCreation(input);
    const { database, clock, logger } = this.deps;
    const priority: Priority = n.priority ?? defaultPriorityOf(n.type);
    const [prefs, timezone] = await Promise.all([this.preferences.get(n.userId), this.timezoneOf(n.userId)]);
    const now = clock.now();
    const decision = decideDelivery({ type: n.type, priority }, prefs, timezone, now, this.deliveryRules);
    const content = contentParams(n, priority);
    const key = n.idempotencyKey;
    // The content as parsed, data as an object (its key order does not matter).
    const hash = key ? requestHash([n.userId, ...content.slice(0, -1), n.data ?? null]) : null;
    if (!decision.store) return (key && (await replay(database, n.userId, key, hash!))) || { status: "type_disabled" };

    const keyCutoff = new Date(now.getTime() - IDEMPOTENCY_RETENTION_MS);
    const item = { params: [n.userId, ...content, key ?? null, decision.inApp, hash], now, keyCutoff };
    if (key) this.purgeExpiredKeys(keyCutoff);
    // The row, its key and its out-of-app queue rows (src/channels) commit
    // together: in one statement (shared with concurrent creations:
    // group-insert.ts) when every send is single, else in a transaction that
    // also joins the hour's bundle.
    const sends = singleSendRows(decision, now);
    const chosen = (Object.keys(decision.outOfApp) as AddressedChannel[]).filter((c) => decision.outOfApp[c].mode !== "off");
    // Read beside the insert: the answer waits for the slower of the two, not for both in turn.
    const recipient = options.deliveryWarnings && chosen.length > 0 ? this.recipients.read(n.userId, chosen.includes("push")) : undefined;
    recipient?.catch(() => undefined); // awaited below; never an unhandled rejection if the insert throws first
    const row = sends
      ? await this.insertBatcher(database).insert({ ...item, sends })
      : await database.transaction(async (tx) => {
          const [inserted] = await insertNotifications(tx, [{ ...item, sends: { channels: [], dueAt: [], payloads: [] } }], MAX_SEND_ATTEMPTS);
          if (inserted) await enqueueOutOfApp(tx, { id: inserted.id, userId: n.userId }, decision, { now, maxAttempts: MAX_SEND_ATTEMPTS });
          return inserted;
        });
    if (!row) {
      // The key was taken before (maybe by a concurrent call that just committed).
      const answer = await replay(database, n.userId, key!, hash!);
      if (!answer) throw new HeraldError("HERALD_CONFLICT", "The idempotency key expired while this request was written; send it again");
      return answer;
    }
    const dto = options.serializeOnce ? withJson(toNotificationDto(row)) : toNotificationDto(row);
    if (decision.inApp) {
      // Not awaited: the caller's answer needs the commit, not the bus round
      // trip to other instances (pushes keep their order: one publisher
      // connection). Stored is what counts: a failed push is caught up by sync.
      void this.realtime.publishNotification(dto, decision.presentation).catch((err: unknown) => {
        logger.warn({ err, id: dto.id }, "live push failed; the notification waits for sync");
      });
    }
    if (!recipient) return { status: "created", notification: dto };
    return { status: "created", notification: dto, warnings: deliveryWarnings(chosen, await recipient) };
  }

  /** Fills the template `templateKey` with `variables` and creates the notification. */
  async createFromTemplate(
    templateKey: string,
    userId: string,
    variables: TemplateVariables = {},
    options: FromTemplateOptions = {},
  ): Promise<NotificationDto | null> {
    return this.createAndSendNotification(await this.fromTemplate(templateKey, userId, variables, options));
  }

  /** The creation input `createFromTemplate` makes (for `create`, which says what happened). */
  async fromTemplate(templateKey: string, userId: string, variables: TemplateVariables = {}, options: FromTemplateOptions = {}): Promise<CreateNotificationInput> {
    const content = await this.templates.render(templateKey, variables);
    return {
      ...content,
      userId,
      ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
      ...(options.relatedId !== undefined ? { relatedId: options.relatedId } : {}),
      ...(options.data !== undefined ? { data: options.data } : {}),
    };
  }

  /** The guide's broadcast: returns the number of providers it was stored for. */
  async createAndBroadcastNotification(input: BroadcastInput): Promise<number> {
    return (await this.broadcast(input)).count;
  }

  /**
   * One transaction writes a row per user who accepts the type (one set-based
   * INSERT ... SELECT, shared broadcast_id) and each recipient's out-of-app
   * sends by their own preferences (broadcast.ts); then one fan-out to the
   * online recipients whose in-app path delivers it.
   */
  async broadcast(input: BroadcastInput): Promise<BroadcastResult> {
    const n = parseOrThrow(notificationContentSchema, input, "broadcast");
    const { database, clock, logger } = this.deps;
    const priority: Priority = n.priority ?? defaultPriorityOf(n.type);
    const { broadcastId, count, base, recipients } = await writeBroadcast(database, n, priority, clock.now(), MAX_SEND_ATTEMPTS, this.deliveryRules);
    if (!base) return { count, broadcastId };
    await this.realtime.publishBroadcast(base, recipients).catch((err: unknown) => {
      logger.warn({ err, broadcastId }, "broadcast fan-out failed; recipients receive it on sync");
    });
    return { count, broadcastId };
  }

  getNotifications(userId: string, options: GetNotificationsOptions = {}): Promise<NotificationPage> {
    return this.inbox.list(userId, options);
  }

  /** One of the user's notifications, or null (also for another user's id). */
  getNotification(userId: string, id: string): Promise<NotificationDto | null> {
    return this.inbox.get(userId, id);
  }

  getUnreadCount(userId: string): Promise<number> {
    return this.inbox.unreadCount(userId);
  }

  /** Marks read (records `opened`); false when the id is not the user's. */
  async markRead(userId: string, notificationId: string): Promise<boolean> {
    return (await this.inbox.update(userId, notificationId, { read: true })) !== null;
  }

  markAllRead(userId: string): Promise<number> {
    return this.inbox.markAllRead(userId);
  }

  /** Archives every notification of the user, in constant time (records no `archived` events); returns how many changed. */
  archiveAll(userId: string): Promise<number> {
    return this.inbox.archiveAll(userId);
  }

  /** Archives (records `archived`); false when the id is not the user's. */
  async archive(userId: string, notificationId: string): Promise<boolean> {
    return (await this.inbox.update(userId, notificationId, { archived: true })) !== null;
  }

  /** Sets read and/or archived; null when the id is not the user's. */
  updateNotification(userId: string, notificationId: string, change: StateChange): Promise<{ read: boolean; archived: boolean } | null> {
    return this.inbox.update(userId, notificationId, change);
  }

  /** Deletes (records `deleted`); false when the id is not the user's. */
  deleteNotification(userId: string, notificationId: string): Promise<boolean> {
    return this.inbox.delete(userId, notificationId);
  }

  /** At stop, after the HTTP server and before the database: every creation written and its delivery workers woken. */
  async close(): Promise<void> {
    await this.batcher?.close();
  }

  private insertBatcher(database: NotificationDeps["database"]): NotificationInsertBatcher {
    if (!this.batcher) this.batcher = new NotificationInsertBatcher(database, { maxAttempts: MAX_SEND_ATTEMPTS });
    return this.batcher;
  }

  /** At most once an hour per service: bounds the key table (an expired key is also taken afresh on use). */
  private purgeExpiredKeys(cutoff: Date): void {
    if (this.lastPurge !== undefined && cutoff.getTime() - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = cutoff.getTime();
    const { database, logger } = this.deps;
    void database.query(PURGE_IDEMPOTENCY_KEYS, [cutoff]).catch((err: unknown) => logger.warn({ err }, "could not purge expired idempotency keys"));
  }

  /** The user's IANA zone from the directory (UTC when unknown), cached like preferences. */
  private async timezoneOf(userId: string): Promise<string> {
    const { database, cache } = this.deps;
    const cached = await cache.get<string>(timezoneCacheKey(userId));
    if (cached) return cached;
    const tz = (await database.query<{ timezone: string }>(SELECT_TIMEZONE, [userId]))[0]?.timezone ?? "UTC";
    await cache.set(timezoneCacheKey(userId), tz, TIMEZONE_TTL_SECONDS);
    return tz;
  }
}
