/**
 * VAPID keys: from the configuration when set, otherwise generated once and
 * kept in `<DATA_DIR>/vapid.json` so every restart (and every instance that
 * shares the directory) signs with the key browsers subscribed with.
 */
import path from "node:path";
import webpush from "web-push";
import type { Config } from "../config/index.js";
import { readOrCreateSecretFile } from "../config/index.js";

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  /** mailto: or https: contact the push services may use. */
  subject: string;
}

const cache = new Map<string, VapidKeys>();

export function loadVapidKeys(config: Pick<Config, "vapid" | "dataDir" | "appUrl" | "email">): VapidKeys {
  const subject = config.vapid.subject ?? defaultSubject(config);
  if (config.vapid.publicKey && config.vapid.privateKey) {
    return { publicKey: config.vapid.publicKey, privateKey: config.vapid.privateKey, subject };
  }
  const file = path.resolve(config.dataDir, "vapid.json");
  const known = cache.get(file);
  if (known) return { ...known, subject };
  const keys = readOrCreate(file);
  cache.set(file, { ...keys, subject });
  return { ...keys, subject };
}

function readOrCreate(file: string): { publicKey: string; privateKey: string } {
  return parse(readOrCreateSecretFile(file, () => `${JSON.stringify(webpush.generateVAPIDKeys(), null, 2)}\n`).text, file);
}

function parse(text: string, file: string): { publicKey: string; privateKey: string } {
  const v = JSON.parse(text) as { publicKey?: unknown; privateKey?: unknown };
  if (typeof v.publicKey !== "string" || typeof v.privateKey !== "string") {
    throw new Error(`${file} does not hold {publicKey, privateKey}`);
  }
  return { publicKey: v.publicKey, privateKey: v.privateKey };
}

/** Push services want a contact: the app's https URL, else the sender address. */
function defaultSubject(config: Pick<Config, "appUrl" | "email">): string {
  if (config.appUrl.startsWith("https://")) return config.appUrl;
  const address = /<([^>]+)>/.exec(config.email.from)?.[1] ?? config.email.from;
  return `mailto:${address.includes("@") ? address.trim() : "noreply@herald.local"}`;
}
