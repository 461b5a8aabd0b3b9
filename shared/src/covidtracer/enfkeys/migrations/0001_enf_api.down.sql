DROP TABLE metrics;
DROP TABLE registration_actions;
DROP TABLE exposures;
DROP TABLE upload_tokens;
DROP TABLE verification_codes;
DROP TABLE registrations;
