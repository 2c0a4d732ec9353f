//! The petition: signing, confirming by email, and the public count.
pub mod confirm;
pub mod progress;
pub mod sign;
