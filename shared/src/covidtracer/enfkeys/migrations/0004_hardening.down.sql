ALTER TABLE upload_tokens DROP COLUMN upload_digest;
DROP TABLE rate_limits;
