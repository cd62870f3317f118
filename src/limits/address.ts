/**
 * Whose address a request is, for limits: the socket's, or X-Forwarded-For's walked back only through the
 * proxies TRUST_PROXY names (believed from anyone, it let every client pick its address). One rule, given
 * to Fastify as its trustProxy (req.ip) and used as is on WebSocket upgrade requests.
 */
import type { IncomingMessage } from "node:http";
import proxyAddr from "@fastify/proxy-addr";

export type TrustProxy = false | readonly string[];
export type TrustFunction = (address: string, hop: number) => boolean;

const trustNone: TrustFunction = () => false;

export function trustFunction(trustProxy: TrustProxy): TrustFunction {
  return trustProxy === false ? trustNone : proxyAddr.compile([...trustProxy]);
}

/** The client's address: what Fastify's req.ip is under the same trust function. */
export function addressOf(req: IncomingMessage, trust: TrustFunction): string {
  if (trust === trustNone) return req.socket.remoteAddress ?? "";
  return proxyAddr(req, trust);
}
