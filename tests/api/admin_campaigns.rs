//! Staff pages (being built).
