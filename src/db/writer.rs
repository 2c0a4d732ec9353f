//! Group commit for SQLite. One thread owns the write connection; every write waiting when it is
//! free runs in one durable transaction, each in its own savepoint, and each caller is answered
//! only after that transaction has committed. A burst of signatures then costs one fsync per batch
//! instead of one per signature, and nothing acknowledged can be lost on a crash or power cut.
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use diesel::r2d2::ManageConnection;
use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{DbConn, Manager};
use crate::error::AppError;

type Answer = Result<Box<dyn Any + Send>, AppError>;
type Work = Box<dyn FnOnce(&mut DbConn) -> Answer + Send>;

struct Job {
    work: Work,
    reply: oneshot::Sender<Answer>,
}

/// Most writes in one transaction; past this a batch's slowest caller waits too long.
const MAX_BATCH: usize = 512;
/// Writes waiting beyond this make callers wait to queue (back-pressure instead of memory growth).
const QUEUE: usize = 16_384;

#[derive(Clone)]
pub struct GroupWriter {
    jobs: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer thread; it ends when the last `GroupWriter` clone is dropped.
    pub fn start(manager: Manager) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("rally-db-writer".into())
            .spawn(move || writer_loop(manager, queue))
            .expect("start the database writer thread");
        GroupWriter { jobs }
    }

    /// Runs `f` in its own savepoint inside the next batch; answers once the batch is durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let work: Work = Box::new(move |conn| f(conn).map(|v| Box::new(v) as Box<dyn Any + Send>));
        self.jobs.send(Job { work, reply }).await.map_err(|_| stopped())?;
        let value = answer.await.map_err(|_| stopped())??;
        Ok(*value.downcast::<T>().expect("the writer answers with the type it was asked for"))
    }
}

fn stopped() -> AppError {
    AppError::internal(anyhow::anyhow!("the database writer has stopped"))
}

fn writer_loop(manager: Manager, mut queue: mpsc::Receiver<Job>) {
    let mut conn: Option<DbConn> = None;
    while let Some(first) = queue.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let c = match conn.take() {
            Some(c) => c,
            None => match manager.connect() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "the database writer could not connect");
                    for job in batch {
                        let _ = job.reply.send(Err(AppError::internal(anyhow::anyhow!("could not open the database: {e}"))));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            },
        };
        conn = run_batch(c, batch);
    }
}

/// Commits a batch and answers its callers; gives the connection back unless a panic left it in
/// an unknown state (dropping it rolls back whatever was uncommitted).
fn run_batch(mut conn: DbConn, batch: Vec<Job>) -> Option<DbConn> {
    let (works, replies): (Vec<Work>, Vec<oneshot::Sender<Answer>>) = batch.into_iter().map(|j| (j.work, j.reply)).unzip();
    let mut answers: Vec<Answer> = Vec::with_capacity(works.len());
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        conn.transaction::<(), AppError, _>(|c| {
            for work in works {
                // A savepoint each: one caller's error rolls back only its own writes.
                answers.push(c.transaction(work));
            }
            Ok(())
        })
    }));
    match outcome {
        Ok(Ok(())) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
            Some(conn)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "a batch of writes could not be committed");
            for reply in replies {
                let _ = reply.send(Err(AppError::internal(anyhow::anyhow!("the write could not be committed: {e}"))));
            }
            Some(conn)
        }
        Err(_) => {
            tracing::error!("a write panicked; its whole batch was rolled back");
            for reply in replies {
                let _ = reply.send(Err(AppError::internal(anyhow::anyhow!("a write in the same batch failed unexpectedly"))));
            }
            None
        }
    }
}
