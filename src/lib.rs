//! Rally: petitions and letters to MPs for UK campaigns.
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod models;
pub mod petition;
pub mod routes;
pub mod seed;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod templates;
pub mod workers;
