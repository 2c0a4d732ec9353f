//! Background work that runs beside the web server.
pub mod backfill;
pub mod milestones;
pub mod outbox;
pub mod retention;
