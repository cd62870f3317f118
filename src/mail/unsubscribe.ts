/**
 * Signed one-click unsubscribe links (RFC 8058): the token names the user and
 * carries an HMAC-SHA256 over a purpose label and the user id, so it works
 * without signing in, cannot be forged or moved to another user, and does not
 * expire (a link in a years-old e-mail still works). The key is derived from a
 * server secret, never used as-is, so it cannot sign anything else.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

const PURPOSE = "herald:unsubscribe:v1";

/** The HMAC key for unsubscribe tokens, derived from a server secret (a dedicated one, or the JWT secret). */
export function unsubscribeKey(secret: string): Buffer {
  return createHmac("sha256", secret).update(`${PURPOSE}:key`).digest();
}

function mac(key: Buffer, userId: string): Buffer {
  return createHmac("sha256", key).update(`${PURPOSE}\n${userId}`).digest();
}

/** "<base64url user id>.<base64url mac>" */
export function unsubscribeToken(key: Buffer, userId: string): string {
  return `${Buffer.from(userId, "utf8").toString("base64url")}.${mac(key, userId).toString("base64url")}`;
}

/** The user id a token was signed for, or undefined when it is malformed or tampered with. */
export function verifyUnsubscribeToken(key: Buffer, token: unknown): string | undefined {
  if (typeof token !== "string" || token.length > 1200) return undefined;
  const m = /^([A-Za-z0-9_-]{1,700})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return undefined;
  const userId = Buffer.from(m[1]!, "base64url").toString("utf8");
  // Re-encoding must give the same text: no alternative spellings of one id.
  if (userId.length === 0 || Buffer.from(userId, "utf8").toString("base64url") !== m[1]) return undefined;
  const given = Buffer.from(m[2]!, "base64url");
  const expected = mac(key, userId);
  return given.length === expected.length && timingSafeEqual(given, expected) ? userId : undefined;
}

/** RFC 8058 one-click headers for `url` (an unsubscribeUrl). */
export function oneClickUnsubscribeHeaders(url: string): Record<string, string> {
  return { "List-Unsubscribe": `<${url}>`, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click" };
}

/** The link for List-Unsubscribe and e-mail footers: APP_URL/api/unsubscribe?token=... */
export function unsubscribeUrl(appUrl: string, key: Buffer, userId: string): string {
  return `${appUrl.replace(/\/+$/, "")}/api/unsubscribe?token=${unsubscribeToken(key, userId)}`;
}
