//! `rally mps import` and `rally mps sync`, and the on-demand MP lookup.
