//! The petition: signing, confirming by email, and the public count.
pub mod emails;
pub mod progress;
pub mod sign;
