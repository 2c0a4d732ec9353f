ALTER TABLE staff DROP COLUMN sessions_valid_after;
