-- Issue 19. A registration's wrong codes since its last right one: while the guessing guard
-- is up, a registration may give only a few (its first attempts are never refused by what
-- others used up). And which code an upload token was issued for: the same registration
-- verifying that code again gets the same token back (a retry after a lost answer).
ALTER TABLE registrations ADD COLUMN verify_failures_since_success integer NOT NULL DEFAULT 0;
ALTER TABLE upload_tokens
  ADD COLUMN code_id bigint REFERENCES verification_codes (id) ON DELETE SET NULL;
CREATE INDEX upload_tokens_code_idx ON upload_tokens (code_id);
