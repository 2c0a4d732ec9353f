DROP TABLE letters; DROP TABLE letter_templates; ALTER TABLE constituencies DROP COLUMN mp_checked_at;
