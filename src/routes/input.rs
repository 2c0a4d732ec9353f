//! Reading request bodies. JSON and HTML forms become the same field map, so the API and the
//! pages share one parser and one set of messages. Every problem is reported against its field.
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::error::{AppError, FieldErrors};

/// Bodies larger than this get 413; no form or JSON body Rally takes comes near it.
pub const BODY_LIMIT: usize = 64 * 1024;

pub struct Input {
    map: Map<String, Value>,
    pub errors: FieldErrors,
}

/// Staff forms carry whole campaign texts and letter templates.
pub const STAFF_BODY_LIMIT: usize = 512 * 1024;

/// Reads the body, refusing it as soon as it passes the limit.
pub async fn read_body(req: &HttpRequest, payload: web::Payload) -> Result<web::Bytes, AppError> {
    read_body_limited(req, payload, BODY_LIMIT).await
}

pub async fn read_body_limited(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<web::Bytes, AppError> {
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok()) {
        if len > limit {
            return Err(AppError::PayloadTooLarge);
        }
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                tracing::debug!(error = %e, "unreadable request body");
                AppError::BadRequest("unreadable_body", "The request body ended early or could not be read; send it again in full.".into())
            })?;
            if body.len() + chunk.len() > limit {
                return Err(AppError::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    // A client that stops sending half-way would otherwise hold a connection for ever.
    tokio::time::timeout(BODY_TIMEOUT, read).await.map_err(|_| AppError::RequestTimeout)?
}

/// Longest a request body may take to arrive; far more than any real form needs.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn content_type(req: &HttpRequest) -> String {
    req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

impl Input {
    pub async fn json(req: &HttpRequest, payload: web::Payload) -> Result<Self, AppError> {
        let ct = content_type(req);
        if ct != "application/json" && !ct.ends_with("+json") {
            return Err(AppError::UnsupportedMediaType("Send the request body as JSON with Content-Type: application/json.".into()));
        }
        let body = read_body(req, payload).await?;
        Self::from_json_slice(&body)
    }

    /// Parses a JSON body that has already been read. The body must be one JSON object; nesting
    /// deeper than serde_json's recursion limit (128) is refused as invalid JSON.
    pub fn from_json_slice(body: &[u8]) -> Result<Self, AppError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| AppError::BadRequest("invalid_json", format!("The request body is not valid JSON: {e}.")))?;
        match value {
            Value::Object(map) => Ok(Input { map, errors: FieldErrors::default() }),
            _ => Err(AppError::BadRequest("invalid_json", "The request body must be a JSON object.".into())),
        }
    }

    pub async fn form(req: &HttpRequest, payload: web::Payload) -> Result<Self, AppError> {
        Self::form_limited(req, payload, BODY_LIMIT).await
    }

    pub async fn form_limited(req: &HttpRequest, payload: web::Payload, limit: usize) -> Result<Self, AppError> {
        let body = read_body_limited(req, payload, limit).await?;
        Self::from_form_slice(&body)
    }

    /// Parses an `application/x-www-form-urlencoded` body that has already been read. Every
    /// field is text; a repeated name keeps its last value; invalid UTF-8 is replaced, not
    /// refused. It never fails today; the `Result` matches [`Input::from_json_slice`].
    pub fn from_form_slice(body: &[u8]) -> Result<Self, AppError> {
        // The form reader would quietly turn bytes that are not UTF-8 into U+FFFD; refuse them,
        // as the JSON reader does, rather than store a mangled name.
        let utf8 = body.split(|b| *b == b'&').all(|pair| {
            let spaced: Vec<u8> = pair.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
            percent_encoding::percent_decode(&spaced).decode_utf8().is_ok()
        });
        if !utf8 {
            return Err(AppError::BadRequest("invalid_form", "The form data is not valid UTF-8 text.".into()));
        }
        let mut map = Map::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            map.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        Ok(Input { map, errors: FieldErrors::default() })
    }

    /// The names of the fields the body carried, for tests and fuzzing.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// A text field; missing or null reads as empty so the parser can say "Enter your …".
    pub fn text(&mut self, field: &str) -> String {
        match self.map.get(field) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                self.errors.add(field, "Must be text.");
                String::new()
            }
        }
    }

    /// An optional text field: `None` when absent, null or blank.
    pub fn optional_text(&mut self, field: &str) -> Option<String> {
        let s = self.text(field);
        (!s.trim().is_empty()).then_some(s)
    }

    /// A yes/no field: `true`/`false` (or 1/0, "yes"/"no", "on"/"off"), or a ticked checkbox on a
    /// form. Absent means no.
    pub fn flag(&mut self, field: &str) -> bool {
        match self.map.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            // Lenient alike for forms and JSON: clients that send "true" or 1 mean yes.
            Some(Value::Number(n)) if n.as_i64() == Some(1) => true,
            Some(Value::Number(n)) if n.as_i64() == Some(0) => false,
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => true,
                "off" | "false" | "no" | "0" | "" => false,
                _ => {
                    self.errors.add(field, "Must be true or false.");
                    false
                }
            },
            Some(_) => {
                self.errors.add(field, "Must be true or false.");
                false
            }
        }
    }

    /// Records a parse result's error against its field.
    pub fn check<T>(&mut self, field: &str, parsed: Result<T, String>) -> Option<T> {
        match parsed {
            Ok(v) => Some(v),
            Err(problem) => {
                // One message per problem: "Must be text." already says it all.
                if self.errors.first(field).is_none() {
                    self.errors.add(field, problem);
                }
                None
            }
        }
    }

    /// A nested JSON object as its own input (`None` when absent); a non-object is an error.
    pub fn nested(&mut self, field: &str) -> Option<Input> {
        match self.map.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(Input { map: m.clone(), errors: FieldErrors::default() }),
            Some(_) => {
                self.errors.add(field, "Must be an object.");
                Some(Input { map: Map::new(), errors: FieldErrors::default() })
            }
        }
    }

    pub fn raw(&self, field: &str) -> Option<&str> {
        self.map.get(field).and_then(Value::as_str)
    }
}
