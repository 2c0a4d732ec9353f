//! Taking data back: the forget link in every email to a supporter, and one-click unsubscribe.
pub mod forget;
