//! Input types that are parsed once at the edge; holding one means the value is valid.
mod email;
mod name;
mod postcode;
mod slug;

pub use email::EmailAddress;
pub use name::PersonName;
pub use postcode::UkPostcode;
pub use slug::Slug;
