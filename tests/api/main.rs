//! Black-box tests: HTTP in, SMTP out, as a supporter, a browser or a mail server sees Rally.
mod helpers;

mod accessibility;
mod admin_auth;
mod admin_campaigns;
mod admin_dashboard;
mod admin_ops;
mod bad_input;
mod browser;
mod campaigns;
mod command_line;
mod crash;
mod db_copy;
mod constituencies;
mod faults;
mod fuzzing;
mod hot_path;
mod instances;
mod letters;
mod milestones;
mod mps;
mod operations;
mod pages;
mod privacy;
mod signing;
