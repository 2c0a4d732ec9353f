//! One file per table: row structs and the queries on them.
pub mod campaigns;
pub mod constituencies;
pub mod letter_templates;
pub mod letters;
pub mod members;
pub mod milestones;
pub mod outbox;
pub mod postcodes;
pub mod audit;
pub mod settings;
pub mod signatures;
pub mod staff;
pub mod targets;
pub mod tokens;
pub mod updates;
