//! Constituencies and their MPs: CSV import, sync from the Members API, on-demand lookup.
