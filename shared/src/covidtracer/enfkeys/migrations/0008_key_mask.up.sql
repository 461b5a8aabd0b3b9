-- Exposure keys reach the database masked (covidtracer.enfkeys.keymask): psycopg2 binds
-- parameters into a statement's text and PostgreSQL logs that text when the statement fails
-- or is cancelled (log_min_error_statement = error, its default and Aurora's), so a key in
-- it would be a key in the database's log (DESIGN §8, issue 20). The service XORs each key
-- with a pad only this database can make again, from a secret of its own; the statement
-- unmasks the keys with unmask_keys().

-- The secret: 32 bytes (244 of them random: two version-4 UUIDs from gen_random_uuid(),
-- PostgreSQL's cryptographically strong generator, core since PostgreSQL 13). Read by a
-- SELECT only, so it never appears in a statement's text.
CREATE TABLE key_mask (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  secret bytea NOT NULL CHECK (length(secret) = 32)
);
INSERT INTO key_mask (secret) VALUES (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));

-- The keys of masked (16 bytes each): element i (from 1) XOR the first 16 bytes of
-- SHA-256(secret || nonce || int4(i)). fingerprint (the first 8 bytes of
-- SHA-256('fingerprint' || secret)) names the secret the caller masked with: a mask made
-- with another secret is refused rather than unmasked into keys nobody uploaded.
CREATE FUNCTION unmask_keys(masked bytea[], nonce bytea, fingerprint bytea)
RETURNS bytea[] LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
  s bytea;
BEGIN
  SELECT secret INTO STRICT s FROM key_mask;
  IF substr(sha256('fingerprint'::bytea || s), 1, 8) IS DISTINCT FROM fingerprint THEN
    RAISE EXCEPTION 'exposure keys masked with another secret' USING ERRCODE = 'CTKM1';
  END IF;
  -- The casts below would pad or cut a key of another length without a word.
  IF EXISTS (SELECT 1 FROM unnest(masked) AS m WHERE m IS NULL OR octet_length(m) <> 16) THEN
    RAISE EXCEPTION 'an exposure key is 16 bytes' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN ARRAY(
    SELECT int8send(('x' || encode(substr(m, 1, 8), 'hex'))::bit(64)::bigint
                    # ('x' || encode(substr(p, 1, 8), 'hex'))::bit(64)::bigint)
        || int8send(('x' || encode(substr(m, 9, 8), 'hex'))::bit(64)::bigint
                    # ('x' || encode(substr(p, 9, 8), 'hex'))::bit(64)::bigint)
    FROM unnest(masked) WITH ORDINALITY AS u(m, i),
         LATERAL (SELECT sha256(s || nonce || int4send(i::integer)) AS p) AS pad
    ORDER BY i
  );
END
$$;
