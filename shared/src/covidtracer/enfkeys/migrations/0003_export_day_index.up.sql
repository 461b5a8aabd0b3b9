-- The export reads each window's keys in pages, in key order, by the UTC day they became
-- available (``max(created_at, embargo end)``, export_model.available_at): this index is
-- that day followed by the key, carrying every column the export packs, so a page is one
-- index-only range scan that reads exactly the rows it returns and needs no sort.
-- The day expression must stay identical to export_db.EXPORT_DAY (a test holds them equal).
-- The embargo end is counted in whole 10-minute intervals: (rsn + rp) * 600 s + 2 h lands on
-- day floor((rsn + rp + 12) / 144); numeric keeps any int32 start and period exact.
CREATE INDEX exposures_export_day_idx ON exposures (
  (GREATEST((created_at AT TIME ZONE 'UTC')::date - DATE '1970-01-01', floor((rolling_start_number::numeric + rolling_period + 12) / 144)::integer)),
  key_data
) INCLUDE (created_at, rolling_start_number, rolling_period, transmission_risk_level,
           report_type, days_since_onset);

-- Only the export's former single query (an OR over created_at and the embargo) used it.
DROP INDEX exposures_valid_until_idx;
