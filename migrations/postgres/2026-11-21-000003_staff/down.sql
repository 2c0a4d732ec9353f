DROP TABLE audit_log; DROP TABLE staff; ALTER TABLE signatures DROP COLUMN invalidated_reason; ALTER TABLE signatures DROP COLUMN invalidated_at;
