-- Fixed-window rate limits keyed on what a caller controls (source address, the service as
-- a whole): registrations and code-verification failures (DESIGN §8). One row per (limit,
-- hashed subject, window); the cleanup job deletes windows that have ended.
CREATE TABLE rate_limits (
    bucket text PRIMARY KEY,
    hits integer NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX rate_limits_expires_at_idx ON rate_limits (expires_at);

-- What an upload token's claim stored (SHA-256 over the upload's keys): when the answer to
-- an upload is lost (the connection dropped after the commit), the phone's retry of the
-- same upload is recognised and answered 204 instead of "token already used".
ALTER TABLE upload_tokens ADD COLUMN upload_digest bytea;
