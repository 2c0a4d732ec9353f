//! `rally db copy`: moves a campaign's data from one database to another (SQLite to PostgreSQL,
//! back, or between two SQLite files), ids and all, and checks the counts at the end.
//!
//! The source is read in one snapshot (a read transaction), so a campaign that keeps running
//! during the copy is copied as it stood at one instant. The target must be empty; it is written
//! in chunks, each its own transaction, table by table in foreign-key order.
use std::fmt;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::ManageConnection;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Db, DbConn, Manager};
use crate::config::redact_url;

/// Rows read from the source and written to the target per transaction.
const CHUNK: i64 = 1_000;
/// Rows per INSERT statement (at most 20 columns, so well under either backend's parameter limit).
const ROWS_PER_INSERT: usize = 200;

/// Copies a table's rows from the source to the target, reporting progress; answers how many.
type CopyFn = fn(&mut DbConn, &mut DbConn, &dyn Fn(u64)) -> anyhow::Result<u64>;

/// One table as the copy sees it.
struct Table {
    name: &'static str,
    /// The id comes from a BIGSERIAL sequence on PostgreSQL, which must be moved past copied ids.
    serial: bool,
    count: fn(&mut DbConn) -> QueryResult<i64>,
    copy: CopyFn,
}

/// Each table: its key (for chunks, in key order), whether the id is serial on PostgreSQL, and
/// its columns as in schema.rs. The build fails if schema.rs has a column not listed here (or
/// lists them in another order), and `check_for_backend` checks every type on both backends.
macro_rules! tables {
    ($( $table:ident by $pk:ident: $pkty:ty, serial: $serial:literal { $($col:ident: $ty:ty,)+ } )+) => {
        mod rows {
            $(
                pub mod $table {
                    use diesel::prelude::*;
                    use crate::db::schema::$table;
                    use crate::db::DbConn;

                    #[derive(Queryable, Selectable, Insertable)]
                    #[diesel(table_name = $table)]
                    #[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
                    #[diesel(treat_none_as_default_value = false)]
                    pub struct Row {
                        $(pub $col: $ty,)+
                    }

                    /// Fails to compile when this list and schema.rs disagree.
                    #[allow(dead_code)]
                    fn every_column_is_copied() {
                        let _: <$table::table as diesel::Table>::AllColumns = ($($table::$col,)+);
                    }

                    pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
                        $table::table.count().get_result(conn)
                    }

                    pub fn copy(src: &mut DbConn, dst: &mut DbConn, progress: &dyn Fn(u64)) -> anyhow::Result<u64> {
                        let mut after: Option<$pkty> = None;
                        let mut copied = 0u64;
                        loop {
                            let mut query = $table::table
                                .select(Row::as_select())
                                .order($table::$pk.asc())
                                .limit(super::super::CHUNK)
                                .into_boxed();
                            if let Some(key) = after.take() {
                                query = query.filter($table::$pk.gt(key));
                            }
                            let rows: Vec<Row> = query.load(src)?;
                            let Some(last) = rows.last() else { break };
                            after = Some(last.$pk.clone());
                            // Multi-row inserts need the backend's own connection (diesel's
                            // MultiBackend has no batch insert).
                            match dst {
                                DbConn::Sqlite(c) => c.transaction(|c| {
                                    for part in rows.chunks(super::super::ROWS_PER_INSERT) {
                                        diesel::insert_into($table::table).values(part).execute(c)?;
                                    }
                                    QueryResult::Ok(())
                                })?,
                                DbConn::Pg(c) => c.transaction(|c| {
                                    for part in rows.chunks(super::super::ROWS_PER_INSERT) {
                                        diesel::insert_into($table::table).values(part).execute(c)?;
                                    }
                                    QueryResult::Ok(())
                                })?,
                            }
                            copied += rows.len() as u64;
                            progress(rows.len() as u64);
                            if (rows.len() as i64) < super::super::CHUNK {
                                break;
                            }
                        }
                        Ok(copied)
                    }
                }
            )+
        }

        /// Every application table, parents before children.
        const TABLES: &[Table] = &[
            $( Table { name: stringify!($table), serial: $serial, count: rows::$table::count, copy: rows::$table::copy }, )+
        ];
    };
}

tables! {
    settings by key: String, serial: false {
        key: String,
        value: String,
    }
    campaigns by id: i64, serial: true {
        id: i64,
        slug: String,
        title: String,
        summary: String,
        body_md: String,
        content_note: Option<String>,
        state: String,
        closes_at: Option<i64>,
        closed_at: Option<i64>,
        created_at: i64,
        updated_at: i64,
        mp_digest: bool,
    }
    milestones by id: i64, serial: true {
        id: i64,
        campaign_id: i64,
        threshold: i64,
        reached_at: Option<i64>,
    }
    targets by id: i64, serial: true {
        id: i64,
        campaign_id: i64,
        key: String,
        name: String,
        title: String,
        salutation: String,
        email: String,
        position: i64,
    }
    constituencies by ons_code: String, serial: false {
        ons_code: String,
        name: String,
        mp_checked_at: Option<i64>,
    }
    members by id: i64, serial: false {
        id: i64,
        ons_code: Option<String>,
        name: String,
        party: Option<String>,
        email: Option<String>,
        updated_at: i64,
    }
    postcodes by postcode: String, serial: false {
        postcode: String,
        status: String,
        ons_code: Option<String>,
        fetched_at: i64,
    }
    signatures by id: i64, serial: true {
        id: i64,
        campaign_id: i64,
        name: String,
        email: String,
        email_key: String,
        postcode: String,
        ons_code: Option<String>,
        updates_opt_in: bool,
        show_name: bool,
        state: String,
        created_at: i64,
        confirmed_at: Option<i64>,
        invalidated_reason: Option<String>,
        invalidated_at: Option<i64>,
    }
    staff by id: i64, serial: true {
        id: i64,
        email: String,
        name: String,
        password_hash: String,
        role: String,
        created_at: i64,
        disabled_at: Option<i64>,
        sessions_valid_after: i64,
    }
    audit_log by id: i64, serial: true {
        id: i64,
        staff_id: Option<i64>,
        staff_name: String,
        action: String,
        detail: String,
        created_at: i64,
    }
    tokens by id: i64, serial: true {
        id: i64,
        token_hash: String,
        purpose: String,
        subject_id: i64,
        created_at: i64,
        expires_at: i64,
        used_at: Option<i64>,
    }
    outbox by id: i64, serial: true {
        id: i64,
        kind: String,
        subject_id: i64,
        state: String,
        attempts: i64,
        run_at: i64,
        lease_until: Option<i64>,
        last_error: Option<String>,
        created_at: i64,
        sent_at: Option<i64>,
    }
    letter_templates by id: i64, serial: true {
        id: i64,
        campaign_id: i64,
        target_key: String,
        subject: String,
        body: String,
        version: i64,
        created_by: Option<String>,
        created_at: i64,
    }
    letters by id: i64, serial: true {
        id: i64,
        campaign_id: i64,
        target_key: String,
        target_name: String,
        target_email: String,
        ons_code: Option<String>,
        writer_name: String,
        writer_email: String,
        writer_email_key: String,
        address_line1: String,
        address_line2: Option<String>,
        town: String,
        postcode: String,
        personal_edit: Option<String>,
        subject: String,
        body: String,
        state: String,
        created_at: i64,
        confirmed_at: Option<i64>,
        sent_at: Option<i64>,
        survey_asked_at: Option<i64>,
        survey_reminded_at: Option<i64>,
        reply: Option<String>,
        replied_at: Option<i64>,
    }
    updates by id: i64, serial: true {
        id: i64,
        campaign_id: i64,
        subject: String,
        body_md: String,
        state: String,
        created_by: String,
        created_at: i64,
        updated_at: i64,
        started_at: Option<i64>,
        finished_at: Option<i64>,
        recipients: i64,
        queued: i64,
        last_signature_id: i64,
        public: bool,
    }
    update_deliveries by id: i64, serial: true {
        id: i64,
        update_id: i64,
        signature_id: i64,
    }
    mp_digests by id: i64, serial: true {
        id: i64,
        campaign_id: i64,
        ons_code: String,
        week: i64,
        created_at: i64,
    }
    mp_digest_optouts by id: i64, serial: true {
        id: i64,
        campaign_id: i64,
        ons_code: String,
        created_at: i64,
    }
}

/// Tables that are not the application's data: migrations are applied, not copied.
fn is_bookkeeping(table: &str) -> bool {
    table == "__diesel_schema_migrations" || table.starts_with("sqlite_")
}

/// One table's rows in the source (at the snapshot) and in the target after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub source: i64,
    pub target: i64,
}

#[derive(Debug, Clone)]
pub struct CopyReport {
    pub tables: Vec<TableCount>,
}

impl CopyReport {
    pub fn mismatches(&self) -> Vec<&'static str> {
        self.tables.iter().filter(|t| t.source != t.target).map(|t| t.table).collect()
    }

    pub fn rows(&self) -> i64 {
        self.tables.iter().map(|t| t.target).sum()
    }
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<18} {:>10} {:>10}", "table", "source", "target")?;
        for t in &self.tables {
            let verdict = if t.source == t.target { "ok" } else { "MISMATCH" };
            writeln!(f, "{:<18} {:>10} {:>10}  {verdict}", t.table, t.source, t.target)?;
        }
        Ok(())
    }
}

/// A connection of our own (not pooled), without the server's statement timeout: counting or
/// reading a large table may take longer than a web request should.
fn open(url: &str, role: &str) -> anyhow::Result<DbConn> {
    let manager = Manager::new(url).with_context(|| format!("--{role}"))?;
    let mut conn = manager.connect().with_context(|| format!("could not open the {role} database {}", redact_url(url)))?;
    if let DbConn::Pg(c) = &mut conn {
        c.batch_execute("SET statement_timeout = 0")?;
    }
    Ok(conn)
}

/// The application tables a database has that this copy does not know (a newer Rally, say).
fn unknown_tables(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let names: Vec<Name> = match conn {
        DbConn::Sqlite(c) => diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table'").load(c)?,
        DbConn::Pg(c) => diesel::sql_query(
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
        .load(c)?,
    };
    Ok(names
        .into_iter()
        .map(|n| n.name)
        .filter(|n| !is_bookkeeping(n) && !TABLES.iter().any(|t| t.name == n))
        .collect())
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Copies every application table from `from` into the empty database `to`, ids included, and
/// reports each table's count on both sides. Blocking. Refuses (changing nothing) when the
/// target already holds data. The caller decides what a mismatch means (see `mismatches`).
pub fn copy(from: &str, to: &str, show_progress: bool) -> anyhow::Result<CopyReport> {
    Manager::new(from).context("--from")?;
    Manager::new(to).context("--to")?;
    anyhow::ensure!(from != to, "--from and --to name the same database");
    if let Some(path) = from.strip_prefix("sqlite://").or_else(|| from.strip_prefix("sqlite:")) {
        // Opening a missing file would create an empty database and copy nothing.
        anyhow::ensure!(std::path::Path::new(path).is_file(), "there is no SQLite database at {path} (--from)");
    }
    let mut src = open(from, "source")?;
    let mut dst = open(to, "target")?;

    // The same migrations on both sides, so the tables match; nothing else is loaded.
    Db::connect(from)?.migrate().with_context(|| format!("could not migrate the source database {}", redact_url(from)))?;
    Db::connect(to)?.migrate().with_context(|| format!("could not migrate the target database {}", redact_url(to)))?;

    let unknown = unknown_tables(&mut src)?;
    anyhow::ensure!(
        unknown.is_empty(),
        "the source database has tables this version of Rally does not know how to copy ({}); nothing was copied",
        unknown.join(", ")
    );

    let mut occupied = Vec::new();
    for t in TABLES {
        let n = (t.count)(&mut dst).with_context(|| format!("could not count {} in the target", t.name))?;
        if n > 0 {
            occupied.push(format!("{} has {}", t.name, plural(n, "row", "rows")));
        }
    }
    anyhow::ensure!(
        occupied.is_empty(),
        "the target database {} already holds data ({}); `rally db copy` only copies into an empty database, \
         so nothing was copied. Use a new, empty database as the target (do not run `rally migrate` or `rally serve` on it first).",
        redact_url(to),
        occupied.join(", ")
    );

    // One snapshot of the source for the counts and the rows alike.
    let begin = match src {
        DbConn::Sqlite(_) => "BEGIN",
        DbConn::Pg(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    src.batch_execute(begin)?;
    let mut counts = Vec::with_capacity(TABLES.len());
    for t in TABLES {
        counts.push((t.count)(&mut src).with_context(|| format!("could not count {} in the source", t.name))?);
    }
    let total: i64 = counts.iter().sum();

    let bar = if show_progress { ProgressBar::new(total as u64) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len} rows ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    for t in TABLES {
        bar.set_message(t.name);
        (t.copy)(&mut src, &mut dst, &|n| bar.inc(n)).with_context(|| {
            format!(
                "copying {} failed; the target now holds part of the data, so empty it (or use a new database) before running the copy again",
                t.name
            )
        })?;
    }
    bar.finish_and_clear();
    src.batch_execute("COMMIT")?;

    if let DbConn::Pg(c) = &mut dst {
        // New rows on the target must get ids after the copied ones.
        for t in TABLES.iter().filter(|t| t.serial) {
            c.batch_execute(&format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {0}",
                t.name
            ))
            .with_context(|| format!("could not move the id sequence of {}", t.name))?;
        }
    }

    let mut tables = Vec::with_capacity(TABLES.len());
    for (t, source) in TABLES.iter().zip(counts) {
        let target = (t.count)(&mut dst).with_context(|| format!("could not count {} in the target", t.name))?;
        tables.push(TableCount { table: t.name, source, target });
    }
    Ok(CopyReport { tables })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The migrations and the copy agree: every table they make is copied, once.
    #[test]
    fn every_table_the_migrations_make_is_copied_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        Db::connect(&url).unwrap().migrate().unwrap();
        let mut conn = open(&url, "test").unwrap();
        assert_eq!(unknown_tables(&mut conn).unwrap(), Vec::<String>::new());
        for t in TABLES {
            assert_eq!((t.count)(&mut conn).unwrap(), 0, "{} exists", t.name);
        }
        let mut names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TABLES.len());
    }
}
