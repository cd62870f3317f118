/**
 * NotificationService: the guide's API. Creation decides delivery with the
 * SPEC section 6 rules (src/preferences/delivery-rules.ts), writes the row
 * (and its out-of-app queue rows) in one statement, then hands the committed
 * notification to the WebSocket server. Inbox operations live in inbox.ts,
 * templates in templates.ts, SQL in sql.ts.
 *
 * Promises and limits:
 * - Idempotency is per (user, key), first write wins: a replay answers the
 *   stored notification even if its payload differs, and pushes nothing again.
 * - Out-of-app sends (e-mail, push, SMS) are written as notification_queue rows
 *   (channel, next_retry_at, payload.mode = now | hold_until | hourly) in the
 *   same statement as the notification; the channel workers send them.
 *   Broadcasts are in-app (and digest) only: no queue rows.
 */
import { randomUUID } from "node:crypto";
import { enqueueOutOfApp, singleSendRows } from "../channels/index.js";
import type { NotificationRow } from "../db/schema.js";
import { HeraldError } from "../errors/index.js";
import {
  DEFAULT_PREFERENCES,
  type DeliveryDecision,
  type PreferenceFields,
  PreferencesService,
  decideDelivery,
  isCritical,
  typeToggleOf,
} from "../preferences/index.js";
import { PREFERENCE_COLUMNS } from "../preferences/types.js";
import type { BroadcastBase, BroadcastRecipient, InboxActions } from "../realtime/protocol.js";
import type { NotificationWebSocketServer } from "../realtime/index.js";
import type { Runtime } from "../runtime.js";
import { defaultRuntime } from "../runtime.js";
import { timezoneCacheKey } from "../users/index.js";
import { type GetNotificationsOptions, Inbox, type NotificationPage, type StateChange } from "./inbox.js";
import {
  type BroadcastInput,
  type CreateNotificationInput,
  createNotificationSchema,
  type NotificationContent,
  notificationContentSchema,
  parseOrThrow,
  type TemplateVariables,
} from "./input.js";
import { NotificationInsertBatcher } from "./group-insert.js";
import { INSERT_NOTIFICATION, SELECT_BY_IDEMPOTENCY_KEY, SELECT_TIMEZONE, broadcastPreferences, broadcastStatement } from "./sql.js";
import { NotificationTemplates } from "./templates.js";
import { defaultPriorityOf, type NotificationDto, type Priority, toNotificationDto } from "./types.js";

export type NotificationDeps = Pick<Runtime, "database" | "bus" | "cache" | "clock" | "logger" | "analytics">;

/** What the service needs of the WebSocket server (NotificationWebSocketServer has it all). */
export type RealtimePublisher = Pick<NotificationWebSocketServer, "useInbox" | "publishNotification" | "publishBroadcast" | "publishToUser">;

export interface BroadcastResult {
  count: number;
  broadcastId: string;
}

export interface FromTemplateOptions {
  idempotencyKey?: string;
  relatedId?: string | null;
  data?: Record<string, unknown> | null;
}

const TIMEZONE_TTL_SECONDS = 3600;
/** Attempts of each out-of-app send before it is marked failed. */
const MAX_SEND_ATTEMPTS = 5;
/** Preferences that shape a broadcast's presentation (the type toggle is applied in SQL). */
const PRESENTATION_FIELDS = ["inAppEnabled", "quietHoursEnabled", "quietHoursStart", "quietHoursEnd", "soundEnabled", "soundVolume", "desktopNotifications"] as const;

export class NotificationService implements InboxActions {
  readonly deps: Promise<NotificationDeps>;
  readonly preferences: PreferencesService;
  readonly templates: NotificationTemplates;
  private readonly inbox: Inbox;
  private batcher: NotificationInsertBatcher | undefined;

  constructor(
    readonly realtime: RealtimePublisher,
    deps?: NotificationDeps | Promise<NotificationDeps>,
  ) {
    this.deps = Promise.resolve(deps ?? defaultRuntime());
    this.preferences = new PreferencesService(this.deps);
    this.templates = new NotificationTemplates(this.deps);
    this.inbox = new Inbox(this.deps, realtime);
    // A `read` sent over a socket takes the same path as PATCH /api/notifications/:id.
    realtime.useInbox(this);
  }

  /**
   * Creates one notification for `input.userId` and pushes it to the user's
   * live connections. Returns null when the user switched this type off
   * (SPEC section 6 rule 1: nothing is stored or delivered), except for
   * `security_alert` and `critical`, which cannot be switched off. With an
   * `idempotencyKey` already used by this user, returns the first
   * notification and writes nothing.
   */
  async createAndSendNotification(input: CreateNotificationInput): Promise<NotificationDto | null> {
    const n = parseOrThrow(createNotificationSchema, input, "notification");
    const { database, clock, logger } = await this.deps;
    const priority: Priority = n.priority ?? defaultPriorityOf(n.type);
    const [prefs, timezone] = await Promise.all([this.preferences.get(n.userId), this.timezoneOf(n.userId)]);
    const now = clock.now();
    const decision = decideDelivery({ type: n.type, priority }, prefs, timezone, now);
    if (!decision.store) return n.idempotencyKey ? this.byIdempotencyKey(n.userId, n.idempotencyKey) : null;

    const params = [n.userId, ...contentParams(n, priority), n.idempotencyKey ?? null];
    // The row and its out-of-app queue rows (src/channels) commit together:
    // in one statement (shared with concurrent creations: group-insert.ts)
    // when every send is single, else in a transaction that also joins the
    // hour's bundle.
    const sends = singleSendRows(decision, now);
    const row = sends
      ? await this.insertBatcher(database).insert({ params, sends, now })
      : await database.transaction(async (tx) => {
          const [inserted] = await tx.query<NotificationRow>(INSERT_NOTIFICATION, params);
          if (inserted) await enqueueOutOfApp(tx, { id: inserted.id, userId: n.userId }, decision, { now, maxAttempts: MAX_SEND_ATTEMPTS });
          return inserted;
        });
    if (!row) {
      // The key was used before (maybe by a concurrent call that just committed).
      const existing = await this.byIdempotencyKey(n.userId, n.idempotencyKey!);
      if (!existing) throw new HeraldError("HERALD_CONFLICT", "The notification for this idempotency key was deleted");
      return existing;
    }
    const dto = toNotificationDto(row);
    if (decision.inApp) {
      // Not awaited: the caller's answer needs the commit, not the bus round
      // trip to other instances (pushes keep their order: one publisher
      // connection). Stored is what counts: a failed push is caught up by sync.
      void this.realtime.publishNotification(dto, decision.presentation).catch((err: unknown) => {
        logger.warn({ err, id: dto.id }, "live push failed; the notification waits for sync");
      });
    }
    return dto;
  }

  /** Fills the template `templateKey` with `variables` and creates the notification. */
  async createFromTemplate(
    templateKey: string,
    userId: string,
    variables: TemplateVariables = {},
    options: FromTemplateOptions = {},
  ): Promise<NotificationDto | null> {
    const content = await this.templates.render(templateKey, variables);
    return this.createAndSendNotification({
      ...content,
      userId,
      ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
      ...(options.relatedId !== undefined ? { relatedId: options.relatedId } : {}),
      ...(options.data !== undefined ? { data: options.data } : {}),
    });
  }

  /** The guide's broadcast: returns the number of providers it was stored for. */
  async createAndBroadcastNotification(input: BroadcastInput): Promise<number> {
    return (await this.broadcast(input)).count;
  }

  /**
   * One set-based INSERT ... SELECT over the user directory writes a row per
   * user (skipping those who switched the type off), sharing one broadcast_id;
   * then one fan-out to the online recipients.
   */
  async broadcast(input: BroadcastInput): Promise<BroadcastResult> {
    const n = parseOrThrow(notificationContentSchema, input, "broadcast");
    const { database, clock, logger } = await this.deps;
    const priority: Priority = n.priority ?? defaultPriorityOf(n.type);
    const toggle = isCritical({ type: n.type, priority }) ? undefined : typeToggleOf(n.type);
    const broadcastId = randomUUID();
    const rows = await database.query<{ id: string; seq: string | number; userId: string; createdAt: Date }>(
      broadcastStatement(toggle ? PREFERENCE_COLUMNS[toggle] : null),
      [...contentParams(n, priority), broadcastId],
    );
    if (rows.length === 0) return { count: 0, broadcastId };
    const saved = await this.presentationPreferences();

    const createdAt = new Date(rows[0]!.createdAt).toISOString();
    const base: BroadcastBase = {
      type: n.type,
      priority,
      title: n.title,
      message: n.message,
      description: n.description ?? null,
      icon: n.icon ?? null,
      actionUrl: n.actionUrl ?? null,
      actionLabel: n.actionLabel ?? null,
      read: false,
      archived: false,
      deliveryStatus: "pending",
      sentAt: null,
      deliveredAt: null,
      readAt: null,
      relatedId: n.relatedId ?? null,
      data: n.data ?? null,
      createdAt,
      updatedAt: createdAt,
    };
    const now = clock.now();
    const notification = { type: n.type, priority };
    const defaults = decideDelivery(notification, DEFAULT_PREFERENCES, "UTC", now);
    // Most users share a handful of distinct settings: decide once per distinct one.
    const memo = new Map<string, DeliveryDecision>();
    const recipients: BroadcastRecipient[] = [];
    for (const r of rows) {
      const p = saved.get(r.userId);
      let d = defaults;
      if (p) {
        const key = `${p.inAppEnabled}|${p.soundEnabled}|${p.soundVolume}|${p.desktopNotifications}|${p.quietHoursEnabled ? `${p.quietHoursStart}|${p.quietHoursEnd}|${p.timezone}` : ""}`;
        d = memo.get(key) ?? decideDelivery(notification, { ...DEFAULT_PREFERENCES, ...p }, p.timezone, now);
        memo.set(key, d);
      }
      if (d.inApp) recipients.push({ userId: r.userId, id: r.id, seq: Number(r.seq), presentation: d.presentation });
    }
    await this.realtime.publishBroadcast(base, recipients).catch((err: unknown) => {
      logger.warn({ err, broadcastId }, "broadcast fan-out failed; recipients receive it on sync");
    });
    return { count: rows.length, broadcastId };
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

  private insertBatcher(database: NotificationDeps["database"]): NotificationInsertBatcher {
    return (this.batcher ??= new NotificationInsertBatcher(database, { maxAttempts: MAX_SEND_ATTEMPTS }));
  }

  private async byIdempotencyKey(userId: string, key: string): Promise<NotificationDto | null> {
    const { database } = await this.deps;
    const rows = await database.query<NotificationRow>(SELECT_BY_IDEMPOTENCY_KEY, [userId, key]);
    return rows[0] ? toNotificationDto(rows[0]) : null;
  }

  /** Presentation-shaping preferences (and zone) of every directory user who saved preferences. */
  private async presentationPreferences(): Promise<Map<string, PresentationPreferences>> {
    const { database } = await this.deps;
    const select = PRESENTATION_FIELDS.map((f) => `p.${PREFERENCE_COLUMNS[f]} AS "${f}"`).join(", ");
    const rows = await database.query<PresentationPreferences & { userId: string }>(broadcastPreferences(select));
    return new Map(rows.map((r) => [r.userId, r]));
  }

  /** The user's IANA zone from the directory (UTC when unknown), cached like preferences. */
  private async timezoneOf(userId: string): Promise<string> {
    const { database, cache } = await this.deps;
    const cached = await cache.get<string>(timezoneCacheKey(userId));
    if (cached) return cached;
    const tz = (await database.query<{ timezone: string }>(SELECT_TIMEZONE, [userId]))[0]?.timezone ?? "UTC";
    await cache.set(timezoneCacheKey(userId), tz, TIMEZONE_TTL_SECONDS);
    return tz;
  }
}

type PresentationPreferences = Pick<PreferenceFields, (typeof PRESENTATION_FIELDS)[number]> & { timezone: string };

/** The content columns shared by the single and the broadcast insert, in statement order. */
function contentParams(n: NotificationContent, priority: Priority): unknown[] {
  return [
    n.type,
    priority,
    n.title,
    n.message,
    n.description ?? null,
    n.icon ?? null,
    n.actionUrl ?? null,
    n.actionLabel ?? null,
    n.relatedId ?? null,
    n.data == null ? null : JSON.stringify(n.data),
  ];
}
