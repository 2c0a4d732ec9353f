//! The petition: signing, confirming by email, and the public count.
pub mod counts;
pub mod emails;
pub mod progress;
pub mod sign;
