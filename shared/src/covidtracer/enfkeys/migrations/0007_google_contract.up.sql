-- Google's verification and key-server contracts beside COVID Green's (issue 21): tokens
-- from POST /api/verify, revision of stored keys, the revision tokens' data keys and the
-- certificates /v1/publish has accepted. Codes stay in verification_codes: one claim there
-- serves both contracts, so a code is single-use across them.

-- Verification tokens (/api/verify -> /api/certificate), claimed once by a certificate.
CREATE TABLE verification_tokens (
  id uuid PRIMARY KEY,
  app text NOT NULL,                     -- the API key's app name (never the key itself)
  report_type smallint NOT NULL,
  symptom_onset date,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  claimed_at timestamptz
);
CREATE INDEX verification_tokens_created_at_idx ON verification_tokens (created_at);

-- A key's revision (Google's revised_* columns): likely -> confirmed, or revoked. The export
-- writes a revised key into the revised_keys of the file of the window it was revised in.
ALTER TABLE exposures
  ADD COLUMN revised_report_type smallint,
  ADD COLUMN revised_at timestamptz,
  ADD COLUMN revised_days_since_onset smallint,
  ADD COLUMN revised_transmission_risk smallint;
CREATE INDEX exposures_revised_at_idx ON exposures (revised_at) WHERE revised_at IS NOT NULL;

-- Revision-token data keys: AES-256 keys, stored only wrapped by the KMS key
-- (ENF_REVISION_TOKEN_KEY_ID, named in kms_key_id); the newest of that KMS key's is used to
-- encrypt, every one of them to decrypt.
CREATE TABLE revision_keys (
  id serial PRIMARY KEY,
  kms_key_id text NOT NULL,
  wrapped_key bytea NOT NULL,
  created_at timestamptz NOT NULL
);

-- Certificates /v1/publish accepted (SHA-256 of the JWT) and what the publish stored: a
-- retry of the very same publish after a lost answer is answered as the first one was.
CREATE TABLE publish_certificates (
  certificate_hash bytea PRIMARY KEY,
  keys_digest bytea NOT NULL,
  inserted integer NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX publish_certificates_created_at_idx ON publish_certificates (created_at);
