-- Fixed-window rate limits keyed on what a caller controls (source address, the service as
-- a whole): registrations and code-verification failures (DESIGN §8). One row per (limit,
-- hashed subject, window); the cleanup job deletes windows that have ended.
CREATE TABLE rate_limits (
    bucket text PRIMARY KEY,
    hits integer NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX rate_limits_expires_at_idx ON rate_limits (expires_at);
