-- The export reads each window's keys in pages, in key order, by the UTC day they became
-- available (``max(created_at, embargo end)``, export_model.available_at).

-- Each key as the export writes it (exportfile.PACKED_KEY: key_data, then big-endian
-- transmission_risk_level int16, rolling_start_number int32, rolling_period int32,
-- report_type int16, days_since_onset int32 with 32768 = exportfile.NO_ONSET for none),
-- computed once at upload instead of for every key of every window on every export run:
-- that packing was half of the export's database time.
ALTER TABLE exposures ADD COLUMN export_row bytea GENERATED ALWAYS AS (
  key_data || int2send(transmission_risk_level) || int4send(rolling_start_number)
  || int4send(rolling_period) || int2send(report_type)
  || int4send(coalesce(days_since_onset::integer, 32768))
) STORED;

-- The availability day, then the key, carrying what a page reads: a page is one index-only
-- range scan that returns rows already in key order (no sort) and reads no row it does not
-- return (but a delta's keys available later that day). The day expression must stay
-- identical to export_db.EXPORT_DAY (a test holds them equal). The embargo end
-- (rsn + rp) * 600 s + 2 h lands on day floor((rsn + rp + 12) / 144); numeric keeps any
-- int32 start and period exact.
CREATE INDEX exposures_export_day_idx ON exposures (
  (GREATEST((created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01', floor((rolling_start_number::numeric + rolling_period + 12) / 144)::integer)),
  key_data
) INCLUDE (created_at, rolling_start_number, rolling_period, export_row);

-- Only the export's former single query (an OR over created_at and the embargo) used it.
DROP INDEX exposures_valid_until_idx;
