//! Letters to MPs and fixed targets: render the campaign's template with the writer's details,
//! confirm by email, then deliver one plain-text email an MP's office can act on.
pub mod emails;
pub mod render;
pub mod validate;
pub mod write;
