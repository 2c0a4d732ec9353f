//! Clients for the outside world: postcodes.io, email delivery, and Markdown rendering.
pub mod breaker;
pub mod mailer;
pub mod members;
pub mod markdown;
pub mod postcodes;
