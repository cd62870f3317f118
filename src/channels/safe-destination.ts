/**
 * Where Herald may send a push message (issue 15.4): only to public unicast
 * addresses. Loopback, private, carrier-grade NAT, link-local (cloud metadata
 * at 169.254.169.254), unique-local, multicast, reserved and unspecified
 * destinations are refused after DNS resolution, IPv4 and IPv6 alike
 * (IPv4-mapped and NAT64 forms included). The check runs at registration and
 * again inside the connection's own DNS lookup at send time, so the address
 * checked is the address connected to (no DNS rebinding in between).
 * `allowPrivate` (HERALD_PUSH_ALLOW_PRIVATE) lifts it for local test receivers.
 */
import { lookup as dnsLookup } from "node:dns";
import { BlockList, isIP } from "node:net";

const blocked = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12],
  ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24], ["203.0.113.0", 24],
  ["224.0.0.0", 4], ["240.0.0.0", 4],
] as const) blocked.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128], ["::1", 128], ["::", 96], ["64:ff9b::", 96], ["64:ff9b:1::", 48], ["100::", 64], ["2001:db8::", 32],
  ["fc00::", 7], ["fe80::", 10], ["fec0::", 10], ["ff00::", 8],
  // IPv4-translated (::ffff:0:a.b.c.d) and 6to4 (2002::/16 embeds an IPv4 address): not public unicast either.
  ["::ffff:0:0:0", 96], ["2002::", 16],
] as const) blocked.addSubnet(net, bits, "ipv6");

/** IPv4-mapped (::ffff:a.b.c.d, also in hex) as the IPv4 address it is. */
function unmap(address: string): { address: string; family: "ipv4" | "ipv6" } {
  if (isIP(address) === 4) return { address, family: "ipv4" };
  const m = /^::ffff:(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (m?.[1]) return { address: m[1], family: "ipv4" };
  if (m?.[2] && m[3]) {
    const hi = parseInt(m[2], 16);
    const lo = parseInt(m[3], 16);
    return { address: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: "ipv4" };
  }
  return { address, family: "ipv6" };
}

export function isPublicAddress(address: string): boolean {
  const a = unmap(address.replace(/^\[|\]$/g, ""));
  if (isIP(a.address) === 0) return false;
  return !blocked.check(a.address, a.family);
}

/** Resolves `hostname`; refuses it when any of its addresses is not public. */
export async function resolvePublic(hostname: string): Promise<{ address: string; family: number }[]> {
  const host = hostname.replace(/^\[|\]$/g, "");
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await new Promise<{ address: string; family: number }[]>((resolve, reject) => dnsLookup(host, { all: true }, (err, a) => (err ? reject(err) : resolve(a))));
  const bad = addresses.find((a) => !isPublicAddress(a.address));
  if (addresses.length === 0 || bad) throw new DestinationRefused(`${hostname} resolves to ${bad?.address ?? "nothing"}, which is not a public address`);
  return addresses;
}

export class DestinationRefused extends Error {
  override name = "DestinationRefused";
}

/**
 * A `lookup` for http(s).request that connects only to public addresses.
 * Node's net calls it with `all: true` when happy-eyeballs is on.
 */
export function publicOnlyLookup(hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void): void {
  resolvePublic(hostname).then(
    (addresses) => (options.all ? callback(null, addresses) : callback(null, addresses[0]!.address, addresses[0]!.family)),
    (err: unknown) => callback(err),
  );
}

/** Why a push endpoint may not be registered (its host is not public, or does not resolve); undefined when it may. */
export async function refusedPushEndpoint(endpoint: string): Promise<string | undefined> {
  try {
    await resolvePublic(new URL(endpoint).hostname);
    return undefined;
  } catch (err) {
    return err instanceof DestinationRefused ? err.message : `cannot resolve the endpoint's host: ${(err as Error).message}`;
  }
}
