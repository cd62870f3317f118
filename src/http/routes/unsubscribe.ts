/**
 * RFC 8058 one-click unsubscribe, without signing in: the signed token in the
 * link names the user. POST (what mail clients send, body
 * "List-Unsubscribe=One-Click") turns e-mail digests and out-of-app e-mail
 * off; GET only shows a page with a button that POSTs, because mail scanners
 * prefetch links and a GET must never unsubscribe anyone.
 */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { validationError } from "../../errors/index.js";
import { escapeHtml } from "../../mail/index.js";

const query = z.object({ token: z.string().min(1).max(1200) }).strict();
/** Both routes answer a small HTML page (for the person who clicked, not for a program). */
const htmlPage = (description: string) => ({ 200: { description, content: { "text/html": { schema: z.string() } } } });

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
};

const page = (title: string, body: string) =>
  `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title></head>` +
  `<body style="font-family:-apple-system,Segoe UI,Roboto,Arial,sans-serif;max-width:480px;margin:48px auto;padding:0 16px;color:#111827;">` +
  `<h1 style="font-size:20px;">${escapeHtml(title)}</h1>${body}</body></html>`;

export const unsubscribeRoutes: FastifyPluginAsyncZod = async (app) => {
  // Mail clients post the RFC 8058 form body, as multipart/form-data (what 3.2 says they SHOULD send; it
  // was answered 415, the user stayed subscribed) or urlencoded; only the token in the URL matters.
  for (const type of ["application/x-www-form-urlencoded", "multipart/form-data"]) {
    app.addContentTypeParser(type, { parseAs: "string", bodyLimit: 1024 }, (_req, body, done) => done(null, body));
  }

  const userFor = async (token: string) => {
    const userId = await app.services.digests.verifyUnsubscribe(token);
    if (!userId) throw validationError("Invalid unsubscribe link", [{ field: "token", message: "not a valid unsubscribe token" }]);
    return userId;
  };

  app.get(
    "/unsubscribe",
    {
      config: { auth: "none" },
      schema: {
        tags: ["unsubscribe"],
        operationId: "showUnsubscribePage",
        summary: "Confirmation page for a one-click unsubscribe link (changes nothing)",
        querystring: query,
        response: htmlPage("A page with the button that unsubscribes"),
      },
    },
    async (req, reply) => {
      await userFor(req.query.token);
      const action = `/api/unsubscribe?token=${encodeURIComponent(req.query.token)}`;
      return reply
        .headers(PAGE_HEADERS)
        .send(
          page(
            "Unsubscribe from e-mails",
            `<p>Stop e-mail digests and notification e-mails for this account?</p>` +
              `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="List-Unsubscribe" value="One-Click">` +
              `<button type="submit" style="padding:10px 18px;background:#2563eb;color:#fff;border:0;border-radius:6px;font-size:14px;">Unsubscribe</button></form>`,
          ),
        );
    },
  );

  app.post(
    "/unsubscribe",
    {
      config: { auth: "none" },
      schema: {
        tags: ["unsubscribe"],
        operationId: "unsubscribe",
        summary: "RFC 8058 one-click unsubscribe: turns e-mail digests and e-mail notifications off",
        querystring: query,
        response: htmlPage("A page saying the user is unsubscribed"),
      },
    },
    async (req, reply) => {
      const userId = await userFor(req.query.token);
      await app.services.notifications.preferences.update(userId, { emailDigestEnabled: false, emailEnabled: false });
      return reply.headers(PAGE_HEADERS).send(page("You are unsubscribed", "<p>You will no longer receive e-mail digests or notification e-mails. You can turn them back on in your notification settings.</p>"));
    },
  );
};
