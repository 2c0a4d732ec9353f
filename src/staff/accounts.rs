//! Staff accounts and passwords (argon2id).
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::clock::now_ms;
use crate::db::{is_unique_violation, Db};
use crate::domain::{EmailAddress, PersonName};
use crate::error::AppError;
use crate::models::staff::{self as table, StaffMember, ADMIN, EDITOR};
use crate::models::audit;

pub const PASSWORD_MIN: usize = 12;

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| anyhow::anyhow!("could not hash the password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash of nothing in particular, checked when an email matches no account, so a wrong email
/// takes as long to refuse as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| hash_password("not a real password at all").unwrap_or_default());
    &DUMMY
}

pub fn check_password_rules(password: &str) -> Result<(), String> {
    if password.chars().count() < PASSWORD_MIN {
        return Err(format!("Use at least {PASSWORD_MIN} characters; a few unrelated words work well."));
    }
    if password.chars().count() > 256 {
        return Err("Use at most 256 characters.".into());
    }
    Ok(())
}

pub fn parse_role(role: &str) -> Result<&'static str, String> {
    match role {
        ADMIN => Ok(ADMIN),
        EDITOR => Ok(EDITOR),
        _ => Err("The role must be admin or editor.".into()),
    }
}

/// Creates an account; `by` names who did it for the audit log (`None`: the command line).
pub async fn create(db: &Db, email: &str, name: &str, password: &str, role: &str, by: Option<&StaffMember>) -> Result<i64, AppError> {
    let mut problems = crate::error::FieldErrors::default();
    let email = EmailAddress::parse(email).map_err(|e| problems.add("email", e)).ok();
    let name = PersonName::parse(name).map_err(|e| problems.add("name", e)).ok();
    let _ = check_password_rules(password).map_err(|e| problems.add("password", e));
    let role = parse_role(role).map_err(|e| problems.add("role", e)).ok();
    let (Some(email), Some(name), Some(role)) = (email, name, role) else { return Err(AppError::Validation(problems)) };
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    let hash = hash_password(password)?;
    let (by_id, by_name) = by.map(|s| (Some(s.id), s.name.clone())).unwrap_or((None, "command line".into()));
    let email = email.as_str().to_lowercase();
    let result = db
        .write(move |conn| {
            let now = now_ms();
            let id = table::insert(conn, &email, name.as_str(), &hash, role, now)?;
            audit::record(conn, by_id, &by_name, "staff.create", &format!("added {} ({email}) as {role}", name.as_str()), now)?;
            Ok(id)
        })
        .await;
    match result {
        Err(e) if is_unique_violation(&e) => {
            let mut f = crate::error::FieldErrors::default();
            f.add("email", "There is already a staff account with that email.");
            Err(AppError::Validation(f))
        }
        other => other,
    }
}
