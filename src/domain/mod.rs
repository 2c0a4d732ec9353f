//! Input types that are parsed once at the edge; holding one means the value is valid.
mod address;
mod email;
mod name;
mod personal_edit;
mod postcode;
mod slug;

pub use address::PostalAddress;
pub use email::EmailAddress;
pub use name::{is_format_or_separator, PersonName};
pub use personal_edit::{PersonalEdit, PERSONAL_EDIT_MAX};
pub use postcode::UkPostcode;
pub use slug::Slug;
