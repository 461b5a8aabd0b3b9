CREATE INDEX exposures_valid_until_idx ON exposures ((rolling_start_number + rolling_period));
DROP INDEX exposures_export_day_idx;
