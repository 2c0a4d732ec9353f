//! Background work that runs beside the web server.
pub mod backfill;
pub mod milestones;
pub mod mp_digest;
pub mod outbox;
pub mod reply_survey;
pub mod retention;
pub mod updates;
