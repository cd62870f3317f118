/**
 * Standard Webhooks signatures for every webhook Herald sends
 * (https://www.standardwebhooks.com): `webhook-id` (the same on a retry, so
 * receivers deduplicate), `webhook-timestamp` (Unix seconds, so they refuse
 * replays) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`
 * keyed with the base64 part of a `whsec_...` secret. The secret comes from
 * HERALD_WEBHOOK_SECRET, else is generated once into DATA_DIR/webhook-secret
 * (production requires the variable; src/config enforces it).
 */
import { createHmac, randomBytes } from "node:crypto";
import path from "node:path";
import type { Config } from "../config/index.js";
import { readOrCreateSecretFile } from "../config/index.js";

export function webhookSignatureHeaders(secret: string, id: string, timestampSeconds: number, body: string): Record<string, string> {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
  const signature = createHmac("sha256", key).update(`${id}.${timestampSeconds}.${body}`).digest("base64");
  return { "webhook-id": id, "webhook-timestamp": String(timestampSeconds), "webhook-signature": `v1,${signature}` };
}

export function loadWebhookSecret(config: Pick<Config, "webhookSecret" | "dataDir">): string {
  if (config.webhookSecret) return config.webhookSecret;
  const file = path.resolve(config.dataDir, "webhook-secret");
  return readOrCreateSecretFile(file, () => `whsec_${randomBytes(32).toString("base64")}\n`).text.trim();
}
