-- The ENF API: registrations (nonce -> attested device), upload codes, upload tokens, keys,
-- per-registration rate limits and daily metric counters.

CREATE TABLE registrations (
  id uuid PRIMARY KEY,
  -- Set by POST /register, cleared when PUT /register attests the device.
  nonce text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  verified_at timestamptz,
  -- SHA-256 of the secret inside the refresh token; a refresh token must match it.
  refresh_hash bytea,
  refreshed_at timestamptz,
  last_verify_at timestamptz,
  verify_failure_day date,
  verify_failures integer NOT NULL DEFAULT 0
);
CREATE INDEX registrations_pending_idx ON registrations (created_at) WHERE verified_at IS NULL;
CREATE INDEX registrations_refreshed_idx ON registrations (refreshed_at)
  WHERE verified_at IS NOT NULL;

-- Upload codes, kept only as HMAC(server key, the SHA-512 hex the app sends).
CREATE TABLE verification_codes (
  id bigserial PRIMARY KEY,
  code_hmac bytea NOT NULL UNIQUE,
  symptom_onset date NOT NULL,
  report_type smallint NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  claimed_at timestamptz
);
CREATE INDEX verification_codes_created_at_idx ON verification_codes (created_at);

CREATE TABLE upload_tokens (
  id uuid PRIMARY KEY,
  registration_id uuid NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
  symptom_onset date NOT NULL,
  report_type smallint NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  claimed_at timestamptz
);
CREATE INDEX upload_tokens_created_at_idx ON upload_tokens (created_at);
CREATE INDEX upload_tokens_registration_idx ON upload_tokens (registration_id);

CREATE TABLE exposures (
  id bigserial PRIMARY KEY,
  key_data bytea NOT NULL UNIQUE CHECK (octet_length(key_data) = 16),
  rolling_start_number integer NOT NULL,
  rolling_period integer NOT NULL,
  transmission_risk_level smallint NOT NULL,
  report_type smallint NOT NULL DEFAULT 1,      -- CONFIRMED_TEST
  days_since_onset smallint,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exposures_created_at_idx ON exposures (created_at);

-- When a registration last did a rate-limited action (a metric event, a callback).
CREATE TABLE registration_actions (
  registration_id uuid NOT NULL REFERENCES registrations (id) ON DELETE CASCADE,
  action text NOT NULL,
  last_at timestamptz NOT NULL,
  PRIMARY KEY (registration_id, action)
);

-- Daily counters of the app's metric events (no registration id: nothing personal).
CREATE TABLE metrics (
  day date NOT NULL,
  event text NOT NULL,
  os text NOT NULL,
  version text NOT NULL,
  value bigint NOT NULL,
  PRIMARY KEY (day, event, os, version)
);
