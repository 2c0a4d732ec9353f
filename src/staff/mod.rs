//! Campaign staff: accounts, passwords, sessions and anti-forgery tokens.
pub mod accounts;
pub mod csrf;
pub mod session;
