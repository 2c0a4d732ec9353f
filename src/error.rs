//! One error type for the whole app. Clients see a code and a sentence written for people;
//! the underlying cause is logged and never shown.
use std::collections::BTreeMap;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Problems with individual input fields, keyed by field name.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FieldErrors(pub BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0.entry(field.to_string()).or_default().push(problem.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The first problem for a field, for showing next to it on a page.
    pub fn first(&self, field: &str) -> Option<&str> {
        self.0.get(field).and_then(|v| v.first()).map(String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid input")]
    Validation(FieldErrors),
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("{1}")]
    NotFound(&'static str, String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("{1}")]
    Unavailable(&'static str, String),
    #[error("The request body is too large: Rally takes at most 64 KiB here (512 KiB on staff pages).")]
    PayloadTooLarge,
    #[error("The request body did not arrive in time.")]
    RequestTimeout,
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<&'a BTreeMap<String, Vec<String>>>,
}

impl AppError {
    pub fn not_found() -> Self {
        AppError::NotFound("not_found", "We couldn't find that page.".into())
    }
    pub fn campaign_not_found() -> Self {
        AppError::NotFound("campaign_not_found", "There is no campaign at that address.".into())
    }
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(e.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation_failed",
            AppError::BadRequest(c, _) | AppError::NotFound(c, _) | AppError::Conflict(c, _) | AppError::Unavailable(c, _) => c,
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::RequestTimeout => "request_timeout",
            AppError::MethodNotAllowed(_) => "method_not_allowed",
            AppError::Forbidden(_) => "forbidden",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Internal(_) => "internal_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            AppError::Validation(f) => {
                let n = f.0.len();
                if n == 1 {
                    "One field needs attention.".into()
                } else {
                    format!("{n} fields need attention.")
                }
            }
            AppError::RateLimited { retry_after_secs } => {
                let unit = if *retry_after_secs == 1 { "second" } else { "seconds" };
                format!("Too many requests from your connection. Please try again in {retry_after_secs} {unit}.")
            }
            AppError::Internal(_) => "Something went wrong on our side. Nothing you did caused it; please try again shortly.".into(),
            other => other.to_string(),
        }
    }

    pub fn fields(&self) -> Option<&FieldErrors> {
        match self {
            AppError::Validation(f) => Some(f),
            _ => None,
        }
    }

    fn log(&self) {
        if let AppError::Internal(cause) = self {
            tracing::error!(error.cause_chain = ?cause, "internal error");
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            // The connection went away mid-query (database restarted, network cut): a pause, not a bug.
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _) => database_unavailable(&e),
            _ => AppError::Internal(e.into()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        database_unavailable(&e)
    }
}

/// 503 with a retry hint; the cause goes to the log, never to the client.
fn database_unavailable(cause: &dyn std::fmt::Display) -> AppError {
    tracing::warn!(error = %cause, "database unavailable");
    AppError::Unavailable("database_unavailable", "The database is not answering right now. Please try again shortly.".into())
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::BadRequest(..) => StatusCode::BAD_REQUEST,
            AppError::NotFound(..) => StatusCode::NOT_FOUND,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(..) => StatusCode::CONFLICT,
            AppError::Unavailable(..) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON shape of DESIGN.md. HTML routes render their own pages (see `routes::pages`).
    fn error_response(&self) -> HttpResponse {
        self.log();
        let body = ErrorBody { error: self.code(), message: self.message(), fields: self.fields().map(|f| &f.0) };
        let mut res = HttpResponse::build(self.status_code());
        match self {
            AppError::RateLimited { retry_after_secs } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            AppError::Unavailable(..) => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        res.insert_header((header::CACHE_CONTROL, "no-store")).json(body)
    }
}
