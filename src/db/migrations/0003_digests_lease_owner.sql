-- Digests: who holds the send lease. A stalled instance whose lease was taken
-- over must not overwrite the new holder's outcome with its own failure.
ALTER TABLE email_digests ADD COLUMN leased_by text;
