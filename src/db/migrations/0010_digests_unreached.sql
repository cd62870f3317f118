-- Digests: connection attempts that never carried the message (refused, timed
-- out before the transaction) are not delivery attempts; they are counted here
-- only to grow the retry backoff, so a digest outlives an SMTP outage of hours.
ALTER TABLE email_digests ADD COLUMN unreached integer NOT NULL DEFAULT 0;
