-- ENF export files (what GET /exposures lists and index.txt names) and the export lease.

CREATE TABLE export_files (
  id bigserial PRIMARY KEY,              -- the id phones pass back as ?since=
  path text NOT NULL UNIQUE,             -- S3 object key, exposures/....zip
  window_start timestamptz NOT NULL,     -- the UTC day the file covers starts here
  window_end timestamptz NOT NULL,       -- keys available before this instant are in it
  start_timestamp bigint NOT NULL,       -- export.bin's fields (end bumped for split files)
  end_timestamp bigint NOT NULL,
  part integer NOT NULL,                 -- 1..parts: the split rule's file number
  parts integer NOT NULL,
  batch_num integer NOT NULL,
  batch_size integer NOT NULL,
  key_count integer NOT NULL,
  kind text NOT NULL CHECK (kind IN ('daily', 'delta')),
  created_at timestamptz NOT NULL,
  UNIQUE (window_start, window_end, part)
);
CREATE INDEX export_files_window_idx ON export_files (window_start, window_end);
CREATE INDEX export_files_created_at_idx ON export_files (created_at);

-- One export run at a time: a run takes the row with
-- INSERT … ON CONFLICT DO UPDATE … WHERE expires_at <= now RETURNING; a crashed run's lease
-- simply expires, so the next scheduled run proceeds.
CREATE TABLE export_lease (
  name text PRIMARY KEY,
  holder text NOT NULL,
  expires_at timestamptz NOT NULL
);

-- The export query selects keys by availability: created_at (index from 0001) or the end of
-- the key's validity (the embargo), so the second half of its OR needs this index.
CREATE INDEX exposures_valid_until_idx ON exposures ((rolling_start_number + rolling_period));
