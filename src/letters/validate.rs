//! Checking a letter template before it is saved (being built).
