-- Sessions issued before this time are refused: set when an account is disabled, re-enabled or its password reset.
ALTER TABLE staff ADD COLUMN sessions_valid_after BIGINT NOT NULL DEFAULT 0;
