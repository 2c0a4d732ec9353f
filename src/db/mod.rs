//! Database access: one connection type over SQLite and PostgreSQL, pooled, with migrations.
pub mod copy;
pub mod schema;
mod writer;
pub use writer::Together;

use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::AppError;

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Opens connections for the backend named by the URL scheme, so a bad URL says what is wrong.
#[derive(Debug, Clone)]
pub struct Manager {
    backend: Backend,
    target: String,
}

impl Manager {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            anyhow::ensure!(!path.is_empty(), "DATABASE_URL `{url}` names no file");
            Ok(Manager { backend: Backend::Sqlite, target: path.to_string() })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Manager { backend: Backend::Postgres, target: url.to_string() })
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://")
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        match self.backend {
            Backend::Sqlite => {
                let mut c = SqliteConnection::establish(&self.target).map_err(diesel::r2d2::Error::ConnectionError)?;
                // WAL for concurrent readers; synchronous=FULL so an acknowledged write survives a power cut;
                // secure_delete so deleted personal data does not linger in free pages.
                c.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                     PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(c))
            }
            Backend::Postgres => {
                let mut c = PgConnection::establish(&self.target).map_err(diesel::r2d2::Error::ConnectionError)?;
                c.batch_execute("SET statement_timeout = '15s'").map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConn::Pg(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1").map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

pub type DbPool = Pool<Manager>;
pub type Pooled = PooledConnection<Manager>;

/// Readers and the writer. SQLite allows one writer at a time, so its writes go through one
/// group-commit thread (see `writer`) instead of failing with SQLITE_BUSY; on PostgreSQL, which
/// commits concurrent transactions together itself, reads and writes share one pool.
#[derive(Clone)]
pub struct Db {
    pub backend: Backend,
    read: DbPool,
    write: DbPool,
    group: Option<writer::GroupWriter>,
}

impl Db {
    pub fn connect(url: &str) -> anyhow::Result<Self> {
        let manager = Manager::new(url)?;
        let backend = manager.backend;
        let build = |size: u32| {
            Pool::builder()
                .max_size(size)
                // A SQLite file connection does not go stale; a PostgreSQL one may (server restart).
                .test_on_check_out(backend == Backend::Postgres)
                .connection_timeout(Duration::from_secs(10))
                .build(manager.clone())
                .with_context(|| format!("could not open the database at {}", crate::config::redact_url(url)))
        };
        match backend {
            Backend::Sqlite => {
                // The one-connection pool serves start-up work and command-line tools.
                let write = build(1)?;
                let read = build(8)?;
                Ok(Db { backend, read, write, group: Some(writer::GroupWriter::start(manager)) })
            }
            Backend::Postgres => {
                let pool = build(16)?;
                Ok(Db { backend, read: pool.clone(), write: pool, group: None })
            }
        }
    }

    /// Applies pending migrations; safe to call at every start.
    pub fn migrate(&self) -> anyhow::Result<()> {
        let mut conn = self.write.get()?;
        let applied = match &mut *conn {
            DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            DbConn::Pg(c) => {
                // One instance migrates at a time when several start together.
                c.batch_execute("SELECT pg_advisory_lock(727274)")?;
                let r = c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len());
                c.batch_execute("SELECT pg_advisory_unlock(727274)")?;
                r
            }
        }
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
        if applied > 0 {
            tracing::info!(applied, "database migrated");
        }
        Ok(())
    }

    pub async fn read<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        run(self.read.clone(), f).await
    }

    /// Runs `f` as one transaction (a savepoint in a group commit on SQLite); answers once it is
    /// durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        self.write_as(false, f).await
    }

    /// A write for background work (sending email, filling in constituencies): on SQLite it
    /// gives way to writes that someone is waiting on.
    pub async fn write_background<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        self.write_as(true, f).await
    }

    /// A write that can be done together with others of its kind: on SQLite, every such item in
    /// a batch goes to one call of `run`; on PostgreSQL each is its own transaction.
    pub async fn write_together<T: Send + 'static>(&self, together: Together, item: Box<dyn std::any::Any + Send>) -> Result<T, AppError> {
        match &self.group {
            Some(group) => group.write_together(together, item).await,
            None => {
                let answers = run(self.write.clone(), move |conn| conn.transaction(|c| together(c, vec![item]))).await?;
                writer::unbox(answers.into_iter().next().ok_or_else(|| AppError::internal(anyhow::anyhow!("a grouped write gave no answer")))?)
            }
        }
    }

    /// People's writes in the writer's last batch (always 0 on PostgreSQL).
    pub fn foreground_load(&self) -> usize {
        self.group.as_ref().map_or(0, |g| g.foreground_load())
    }

    async fn write_as<T, F>(&self, background: bool, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        match &self.group {
            Some(group) => group.write(background, f).await,
            None => run(self.write.clone(), move |conn| conn.transaction(|c| f(c))).await,
        }
    }

    /// A blocking connection for CLI commands and start-up work.
    pub fn writer_blocking(&self) -> Result<Pooled, AppError> {
        Ok(self.write.get()?)
    }
}

async fn run<T, F>(pool: DbPool, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await
    .map_err(AppError::internal)?
}

/// True when an insert hit a unique constraint (a race with a twin request).
pub fn is_unique_violation(e: &AppError) -> bool {
    matches!(
        e,
        AppError::Internal(inner) if matches!(
            inner.downcast_ref::<diesel::result::Error>(),
            Some(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
        )
    )
}
