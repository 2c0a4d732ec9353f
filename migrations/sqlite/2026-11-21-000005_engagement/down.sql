DROP TABLE mp_digest_optouts; DROP TABLE mp_digests; DROP TABLE update_deliveries; DROP TABLE updates;
DROP INDEX letters_delivered;
ALTER TABLE letters DROP COLUMN replied_at; ALTER TABLE letters DROP COLUMN reply;
ALTER TABLE letters DROP COLUMN survey_reminded_at; ALTER TABLE letters DROP COLUMN survey_asked_at;
ALTER TABLE campaigns DROP COLUMN mp_digest;
