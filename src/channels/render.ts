/**
 * What a job says, per channel: the short form (push, SMS) and the e-mail
 * (subject, escaped HTML, plain text). A single notification is rendered as
 * itself; an hourly bundle as "N new notifications" with one line each.
 */
import type { ChannelNotification } from "./channel.js";

/** Links point at the app: relative action URLs are resolved against APP_URL; other schemes are dropped. */
export function notificationLink(appUrl: string, n: Pick<ChannelNotification, "id" | "actionUrl">): string {
  const base = `${appUrl.replace(/\/$/, "")}/`;
  if (n.actionUrl) {
    try {
      const u = new URL(n.actionUrl, base);
      if (u.protocol === "https:" || u.protocol === "http:") return u.toString();
    } catch {
      // An unparsable action URL falls back to the notification center below.
    }
  }
  return `${base}?notification=${encodeURIComponent(n.id)}`;
}

export interface ShortMessage {
  title: string;
  body: string;
  /** Where a click goes: the notification's link, or the center for a bundle. */
  url: string;
}

export function shortMessage(appUrl: string, notifications: ChannelNotification[]): ShortMessage {
  if (notifications.length === 1) {
    const n = notifications[0]!;
    return { title: n.title, body: n.message, url: notificationLink(appUrl, n) };
  }
  const lines = notifications.map((n) => `- ${n.title}`);
  const shown = lines.slice(0, 10);
  if (lines.length > shown.length) shown.push(`... and ${lines.length - shown.length} more`);
  return { title: `${notifications.length} new notifications`, body: shown.join("\n"), url: `${appUrl.replace(/\/$/, "")}/` };
}

export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
}

const PRIORITY_COLOURS: Record<string, string> = { critical: "#b91c1c", high: "#c2410c", normal: "#1d4ed8", low: "#4b5563" };

export function renderEmail(
  appUrl: string,
  notifications: ChannelNotification[],
  escapeHtml: (s: string) => string,
  /** The recipient's signed one-click unsubscribe link, in the footer. */
  unsubscribeUrl: string,
): RenderedEmail {
  const single = notifications.length === 1;
  const first = notifications[0]!;
  const subject = single
    ? `${first.priority === "critical" ? "[Critical] " : ""}${first.title}`
    : `${notifications.length} new notifications`;
  const items = notifications.map((n) => {
    const link = notificationLink(appUrl, n);
    const label = n.actionLabel ?? "Open";
    const colour = PRIORITY_COLOURS[n.priority] ?? PRIORITY_COLOURS.normal;
    const html =
      `<tr><td style="padding:12px 0;border-bottom:1px solid #e5e7eb">` +
      `<div style="font-size:16px;font-weight:600;color:#111827">${escapeHtml(n.title)}</div>` +
      `<div style="font-size:12px;color:${colour};text-transform:uppercase;letter-spacing:.05em">${escapeHtml(n.priority)} &middot; ${escapeHtml(n.type)}</div>` +
      `<p style="font-size:14px;color:#374151;margin:8px 0">${escapeHtml(n.message)}</p>` +
      (n.description ? `<p style="font-size:13px;color:#6b7280;margin:0 0 8px">${escapeHtml(n.description)}</p>` : "") +
      `<a href="${escapeHtml(link)}" style="display:inline-block;padding:8px 14px;background:#1d4ed8;color:#ffffff;text-decoration:none;border-radius:4px;font-size:14px">${escapeHtml(label)}</a>` +
      `</td></tr>`;
    const text = [n.title, n.message, ...(n.description ? [n.description] : []), `${label}: ${link}`].join("\n");
    return { html, text };
  });
  const center = `${appUrl.replace(/\/$/, "")}/`;
  const html =
    `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>` +
    `<body style="margin:0;padding:0;background:#f3f4f6;font-family:Arial,Helvetica,sans-serif">` +
    `<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f4f6"><tr><td align="center" style="padding:24px">` +
    `<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="max-width:600px;background:#ffffff;border-radius:8px;padding:24px">` +
    (single ? "" : `<tr><td style="font-size:18px;font-weight:600;color:#111827;padding-bottom:8px">${escapeHtml(subject)}</td></tr>`) +
    items.map((i) => i.html).join("") +
    `<tr><td style="padding-top:16px;font-size:12px;color:#6b7280">You receive this because e-mail notifications are on. ` +
    `<a href="${escapeHtml(center)}" style="color:#6b7280">Notification settings</a> &middot; ` +
    `<a href="${escapeHtml(unsubscribeUrl)}" style="color:#6b7280">Unsubscribe from these e-mails</a></td></tr>` +
    `</table></td></tr></table></body></html>`;
  const text = `${single ? "" : `${subject}\n\n`}${items.map((i) => i.text).join("\n\n")}\n\n--\nNotification settings: ${center}\nUnsubscribe from these e-mails: ${unsubscribeUrl}\n`;
  return { subject, html, text };
}
