CREATE TABLE staff (
    id INTEGER PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY NOT NULL,
    staff_id BIGINT,
    staff_name TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_log_created ON audit_log(created_at);

ALTER TABLE signatures ADD COLUMN invalidated_reason TEXT;
ALTER TABLE signatures ADD COLUMN invalidated_at BIGINT;
