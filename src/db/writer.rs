//! Group commit for SQLite. One thread owns the write connection; every write waiting when it is
//! free runs in one durable transaction, each in its own savepoint, and each caller is answered
//! only after that transaction has committed. A burst of signatures then costs one fsync per batch
//! instead of one per signature, and nothing acknowledged can be lost on a crash or power cut.
//!
//! Writes from people waiting on a page come first; background work (the outbox sender, the
//! backfill) fills each batch only up to a share, so a rush of signers is not slowed by the
//! emails it causes — those wait in the outbox and catch up after.
//!
//! WAL checkpoints run on their own connection and thread, so copying pages into the database
//! file never holds up a commit.
use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::ManageConnection;
use diesel::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{DbConn, Manager};
use crate::error::AppError;

type Answer = Result<Box<dyn Any + Send>, AppError>;
type Work = Box<dyn FnOnce(&mut DbConn) -> Answer + Send>;
/// Writes of one kind done together for a whole batch (one multi-row statement instead of one
/// per caller): the items in arrival order in, one answer per item, in the same order, out.
pub type Together = fn(&mut DbConn, Vec<Box<dyn Any + Send>>) -> Result<Vec<Answer>, AppError>;

enum Kind {
    One(Work),
    Together(Together, Box<dyn Any + Send>),
}

struct Job {
    kind: Kind,
    reply: oneshot::Sender<Answer>,
    background: bool,
}

/// Most writes in one transaction; past this a batch's slowest caller waits too long.
const MAX_BATCH: usize = 512;
/// While people are waiting, background writes take at most one place in a batch for every
/// this many of theirs.
const BACKGROUND_SHARE: usize = 4;
/// Writes waiting beyond this make callers wait to queue (back-pressure instead of memory growth).
const QUEUE: usize = 16_384;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct GroupWriter {
    jobs: mpsc::Sender<Job>,
    busy: Arc<AtomicUsize>,
}

impl GroupWriter {
    /// Starts the writer and checkpoint threads; they end when the last clone is dropped.
    pub fn start(manager: Manager) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let writer_manager = manager.clone();
        let busy = Arc::new(AtomicUsize::new(0));
        let seen = busy.clone();
        std::thread::Builder::new()
            .name("rally-db-writer".into())
            .spawn(move || writer_loop(writer_manager, queue, seen))
            .expect("start the database writer thread");
        let alive = jobs.downgrade();
        std::thread::Builder::new()
            .name("rally-db-checkpoint".into())
            .spawn(move || checkpoint_loop(manager, alive))
            .expect("start the checkpoint thread");
        GroupWriter { jobs, busy }
    }

    /// How many people's writes were in the last batch: background work eases off while high.
    pub fn foreground_load(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Runs `f` in its own savepoint inside the next batch; answers once the batch is durable.
    pub async fn write<T, F>(&self, background: bool, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        let work: Work = Box::new(move |conn| f(conn).map(|v| Box::new(v) as Box<dyn Any + Send>));
        self.send(Kind::One(work), background).await
    }

    /// Hands `item` to `run` together with every other item for the same `run` in the batch.
    pub async fn write_together<T: Send + 'static>(&self, run: Together, item: Box<dyn Any + Send>) -> Result<T, AppError> {
        self.send(Kind::Together(run, item), false).await
    }

    async fn send<T: Send + 'static>(&self, kind: Kind, background: bool) -> Result<T, AppError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { kind, reply, background }).await.map_err(|_| stopped())?;
        unbox(answer.await.map_err(|_| stopped())?)
    }
}

/// A caller's answer as the type it asked for.
pub(super) fn unbox<T: 'static>(answer: Answer) -> Result<T, AppError> {
    answer?.downcast::<T>().map(|v| *v).map_err(|_| AppError::internal(anyhow::anyhow!("a write answered with the wrong type")))
}

fn stopped() -> AppError {
    AppError::internal(anyhow::anyhow!("the database writer has stopped"))
}

fn writer_loop(manager: Manager, mut queue: mpsc::Receiver<Job>, busy: Arc<AtomicUsize>) {
    let mut conn: Option<DbConn> = None;
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        // Block only when nothing is waiting; then take everything that has arrived.
        if waiting.is_empty() {
            match queue.blocking_recv() {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        while waiting.len() < QUEUE {
            match queue.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        let batch = take_batch(&mut waiting);
        busy.store(batch.iter().filter(|j| !j.background).count(), Ordering::Relaxed);
        let c = match conn.take() {
            Some(c) => c,
            None => match connect(&manager) {
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

/// Every waiting foreground write, and background writes up to their share (all of them when
/// no one is waiting in front).
fn take_batch(waiting: &mut VecDeque<Job>) -> Vec<Job> {
    let foreground = waiting.iter().filter(|j| !j.background).count();
    // A quarter of the people waiting, at least one: background work always moves.
    let share = if foreground == 0 { MAX_BATCH } else { (foreground / BACKGROUND_SHARE).max(1) };
    let mut batch = Vec::new();
    let mut background = 0;
    let mut left = VecDeque::new();
    while let Some(job) = waiting.pop_front() {
        if batch.len() >= MAX_BATCH || (job.background && background >= share) {
            left.push_back(job);
        } else {
            background += job.background as usize;
            batch.push(job);
        }
    }
    *waiting = left;
    batch
}

fn connect(manager: &Manager) -> Result<DbConn, diesel::r2d2::Error> {
    let mut c = manager.connect()?;
    // Checkpoints are the checkpoint thread's job.
    c.batch_execute("PRAGMA wal_autocheckpoint = 0").map_err(diesel::r2d2::Error::QueryError)?;
    Ok(c)
}

/// Commits a batch and answers its callers; gives the connection back unless a panic left it in
/// an unknown state (dropping it rolls back whatever was uncommitted).
fn run_batch(mut conn: DbConn, batch: Vec<Job>) -> Option<DbConn> {
    let mut replies = Vec::with_capacity(batch.len());
    let mut ones: Vec<(usize, Work)> = Vec::new();
    let mut groups: Vec<(Together, Vec<(usize, Box<dyn Any + Send>)>)> = Vec::new();
    for (i, job) in batch.into_iter().enumerate() {
        replies.push(job.reply);
        match job.kind {
            Kind::One(work) => ones.push((i, work)),
            Kind::Together(run, item) => match groups.iter_mut().find(|(r, _)| std::ptr::fn_addr_eq(*r, run)) {
                Some((_, items)) => items.push((i, item)),
                None => groups.push((run, vec![(i, item)])),
            },
        }
    }
    let mut answers: Vec<Option<Answer>> = (0..replies.len()).map(|_| None).collect();
    let started = Instant::now();
    let mut worked = Duration::ZERO;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        conn.transaction::<(), AppError, _>(|c| {
            for (run, items) in groups {
                let (places, items): (Vec<usize>, Vec<_>) = items.into_iter().unzip();
                // One savepoint for the group: if it fails, each of its callers hears why.
                match c.transaction(|c| run(c, items)) {
                    Ok(group_answers) if group_answers.len() == places.len() => {
                        for (place, answer) in places.into_iter().zip(group_answers) {
                            answers[place] = Some(answer);
                        }
                    }
                    Ok(_) => {
                        for place in places {
                            answers[place] = Some(Err(AppError::internal(anyhow::anyhow!("a grouped write answered the wrong number of callers"))));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "a grouped write failed");
                        for place in places {
                            answers[place] = Some(Err(AppError::internal(anyhow::anyhow!("a grouped write failed: {e}"))));
                        }
                    }
                }
            }
            for (place, work) in ones {
                // A savepoint each: one caller's error rolls back only its own writes.
                answers[place] = Some(c.transaction(work));
            }
            worked = started.elapsed();
            Ok(())
        })
    }));
    let answers: Vec<Answer> = answers.into_iter().map(|a| a.unwrap_or_else(|| Err(stopped()))).collect();
    tracing::trace!(jobs = answers.len(), work_us = worked.as_micros() as u64, total_us = started.elapsed().as_micros() as u64, "group commit");
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

/// Copies committed pages from the WAL into the database file once a second, beside the writer
/// (PASSIVE never blocks it), so the WAL stays small and commits stay quick.
fn checkpoint_loop(manager: Manager, alive: mpsc::WeakSender<Job>) {
    let mut conn: Option<DbConn> = None;
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        if alive.upgrade().is_none() {
            return;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match manager.connect() {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the checkpoint thread could not connect");
                    continue;
                }
            },
        };
        if let Err(e) = c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)") {
            tracing::warn!(error = %e, "WAL checkpoint failed");
            conn = None;
        }
    }
}
