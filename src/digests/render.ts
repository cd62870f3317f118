/**
 * Builds the digest e-mail (HTML with inline CSS plus a text part) from the
 * notifications of one window. Pure: no I/O, every user-supplied string
 * goes through escapeHtml, every link is absolute and http(s).
 */
import { escapeHtml } from "../mail/index.js";
import type { DigestFrequency } from "./schedule.js";

export interface DigestItem {
  id: string;
  type: string;
  priority: string;
  title: string;
  message: string;
  actionUrl: string | null;
  actionLabel: string | null;
  createdAt: Date;
}

export interface DigestContentInput {
  frequency: DigestFrequency;
  /** Listed items, newest first (possibly fewer than the counts say). */
  items: DigestItem[];
  /** Full count per type in the window. */
  countsByType: Map<string, number>;
  appUrl: string;
  /** The recipient's signed one-click unsubscribe link (src/mail/unsubscribe.ts). */
  unsubscribeUrl: string;
  timeZone: string;
  isTest?: boolean;
}

export interface DigestEmail {
  subject: string;
  html: string;
  text: string;
  count: number;
}

const TYPE_LABELS: Record<string, string> = {
  new_message: "New messages",
  booking_request: "Booking requests",
  booking_confirmed: "Bookings confirmed",
  payment_received: "Payments received",
  platform_update: "Platform updates",
  security_alert: "Security alerts",
};

const PERIOD: Record<DigestFrequency, string> = { hourly: "hourly", daily: "daily", weekly: "weekly" };

export function typeLabel(type: string): string {
  return TYPE_LABELS[type] ?? type.replace(/[_-]+/g, " ").replace(/^./, (c) => c.toUpperCase());
}

/**
 * An absolute http(s) link for a notification's actionUrl: absolute http(s)
 * URLs are kept, relative ones are joined to appUrl, anything else
 * (javascript:, data:, protocol-relative) falls back to the app itself.
 */
export function resolveActionLink(actionUrl: string | null | undefined, appUrl: string): string {
  const base = appUrl.replace(/\/+$/, "");
  const raw = (actionUrl ?? "").trim();
  if (raw === "") return `${base}/`;
  if (/^[a-z][a-z0-9+.-]*:/i.test(raw) || raw.startsWith("//")) {
    try {
      const u = new URL(raw);
      return u.protocol === "http:" || u.protocol === "https:" ? u.toString() : `${base}/`;
    } catch {
      return `${base}/`;
    }
  }
  try {
    return new URL(`${base}/${raw.replace(/^\/+/, "")}`).toString();
  } catch {
    return `${base}/`;
  }
}

export function digestSubject(count: number, isTest = false): string {
  const s = `You have ${count} new notification${count === 1 ? "" : "s"}`;
  return isTest ? `[Test] ${s}` : s;
}

interface Group {
  type: string;
  count: number;
  items: DigestItem[];
}

/** Groups by type, groups ordered by their newest item, items newest first. */
export function groupItems(items: DigestItem[], countsByType: Map<string, number>): Group[] {
  const groups = new Map<string, Group>();
  const sorted = [...items].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  for (const item of sorted) {
    let g = groups.get(item.type);
    if (!g) {
      g = { type: item.type, count: countsByType.get(item.type) ?? 0, items: [] };
      groups.set(item.type, g);
    }
    g.items.push(item);
  }
  for (const g of groups.values()) g.count = Math.max(g.count, g.items.length);
  return [...groups.values()];
}

const timeFormats = new Map<string, Intl.DateTimeFormat>();
/** Building an Intl formatter costs far more than using one: one per zone, reused. */
function timeFormat(timeZone: string): Intl.DateTimeFormat {
  let f = timeFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    timeFormats.set(timeZone, f);
  }
  return f;
}

export function renderDigest(input: DigestContentInput): DigestEmail {
  const groups = groupItems(input.items, input.countsByType);
  // Every notification of the window counts, including types beyond the listed groups.
  const listed = groups.reduce((n, g) => n + g.count, 0);
  const count = Math.max(listed, [...input.countsByType.values()].reduce((n, c) => n + c, 0));
  const unlisted = count - listed;
  const subject = digestSubject(count, input.isTest);
  const when = timeFormat(input.timeZone);
  const appLink = resolveActionLink(null, input.appUrl);
  const prefsLink = input.unsubscribeUrl;
  const heading = `Your ${PERIOD[input.frequency]} digest`;

  const htmlGroups = groups
    .map((g) => {
      const rows = g.items
        .map((item) => {
          const link = resolveActionLink(item.actionUrl, input.appUrl);
          const label = item.actionLabel?.trim() || "View";
          const urgent = item.priority === "critical" || item.priority === "high";
          return `<tr><td style="padding:12px 0;border-top:1px solid #eceef1;">
<div style="font-size:15px;font-weight:600;color:#111827;">${urgent ? '<span style="color:#b91c1c;">&#9679;</span> ' : ""}${escapeHtml(item.title)}</div>
<div style="font-size:14px;color:#374151;margin-top:4px;line-height:1.45;">${escapeHtml(item.message)}</div>
<div style="font-size:12px;color:#6b7280;margin-top:6px;">${escapeHtml(when.format(item.createdAt))} &middot; <a href="${escapeHtml(link)}" style="color:#2563eb;text-decoration:none;">${escapeHtml(label)}</a></div>
</td></tr>`;
        })
        .join("\n");
      const more = g.count - g.items.length;
      const moreRow =
        more > 0
          ? `<tr><td style="padding:8px 0;font-size:13px;color:#6b7280;">and ${more} more &middot; <a href="${escapeHtml(appLink)}" style="color:#2563eb;">open Herald</a></td></tr>`
          : "";
      return `<tr><td style="padding:20px 0 4px 0;">
<h2 style="margin:0;font-size:16px;color:#111827;">${escapeHtml(typeLabel(g.type))} <span style="display:inline-block;min-width:20px;padding:1px 7px;border-radius:10px;background:#eef2ff;color:#3730a3;font-size:12px;text-align:center;">${g.count}</span></h2>
</td></tr>
<tr><td><table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">${rows}${moreRow}</table></td></tr>`;
    })
    .join("\n");

  const otherTypes =
    unlisted > 0
      ? `<tr><td style="padding:12px 0;font-size:13px;color:#6b7280;">and ${unlisted} more of other types &middot; <a href="${escapeHtml(appLink)}" style="color:#2563eb;">open Herald</a></td></tr>`
      : "";
  const empty = count === 0 ? `<tr><td style="padding:20px 0;font-size:15px;color:#374151;">You're all caught up: nothing new.</td></tr>` : "";

  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="x-apple-disable-message-reformatting"><title>${escapeHtml(subject)}</title></head>
<body style="margin:0;padding:0;background:#f3f4f6;font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;">
<div style="display:none;max-height:0;overflow:hidden;">${escapeHtml(subject)}</div>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f3f4f6;"><tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="max-width:600px;width:100%;background:#ffffff;border-radius:8px;">
<tr><td style="padding:24px 24px 8px 24px;">
<h1 style="margin:0;font-size:20px;color:#111827;">${escapeHtml(heading)}</h1>
<p style="margin:8px 0 0 0;font-size:14px;color:#4b5563;">${escapeHtml(subject)}.</p>
</td></tr>
<tr><td style="padding:0 24px 16px 24px;"><table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
${htmlGroups}${otherTypes}${empty}
</table></td></tr>
<tr><td style="padding:16px 24px 24px 24px;"><a href="${escapeHtml(appLink)}" style="display:inline-block;padding:10px 18px;background:#2563eb;color:#ffffff;border-radius:6px;font-size:14px;text-decoration:none;">Open notifications</a></td></tr>
<tr><td style="padding:16px 24px;border-top:1px solid #eceef1;font-size:12px;color:#6b7280;">You receive this ${escapeHtml(PERIOD[input.frequency])} digest because e-mail digests are on. <a href="${escapeHtml(prefsLink)}" style="color:#6b7280;">Unsubscribe from these e-mails</a>.</td></tr>
</table></td></tr></table>
</body></html>`;

  const textGroups = groups
    .map((g) => {
      const lines = g.items.map(
        (item) =>
          `- ${item.title}\n  ${item.message}\n  ${when.format(item.createdAt)} - ${resolveActionLink(item.actionUrl, input.appUrl)}`,
      );
      const more = g.count - g.items.length;
      if (more > 0) lines.push(`  ...and ${more} more: ${appLink}`);
      return `${typeLabel(g.type)} (${g.count})\n${lines.join("\n")}`;
    })
    .join("\n\n");
  const textOther = unlisted > 0 ? `\n\n...and ${unlisted} more of other types: ${appLink}` : "";
  const text = `${heading}\n${subject}.\n\n${count === 0 ? "You're all caught up: nothing new.\n\n" : `${textGroups}${textOther}\n\n`}Open notifications: ${appLink}\nUnsubscribe from these e-mails: ${prefsLink}\n`;

  return { subject, html, text, count };
}

/** The address part of "Name <addr@host>" (or the string itself). */
export function addressOf(from: string): string {
  const m = /<([^>]+)>/.exec(from);
  return (m ? m[1]! : from).trim();
}

/** Headers every digest carries: RFC 8058 one-click unsubscribe (a signed per-user link) plus mailto (RFC 2369). */
export function digestHeaders(unsubscribeUrl: string, from: string, digestId: string): Record<string, string> {
  return {
    "List-Unsubscribe": `<${unsubscribeUrl}>, <mailto:${addressOf(from)}?subject=unsubscribe>`,
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    "X-Herald-Digest-Id": digestId,
  };
}

/** Deterministic Message-ID: a resend of the same digest after a stall is recognisable as the same message. */
export function digestMessageId(digestId: string, appUrl: string): string {
  let host = "herald.local";
  try {
    host = new URL(appUrl).hostname || host;
  } catch {
    // keep the default host
  }
  return `<digest-${digestId}@${host}>`;
}
