DROP INDEX exposures_valid_until_idx;
DROP TABLE export_lease;
DROP TABLE export_files;
