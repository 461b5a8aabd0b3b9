ALTER TABLE upload_tokens DROP COLUMN code_id;
ALTER TABLE registrations DROP COLUMN verify_failures_since_success;
