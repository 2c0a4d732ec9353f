//! `/replies/{token}`: the writer's answer to "did your MP reply?". Opening a link (GET) only
//! shows the question with the link's answer chosen, because mail scanners open every link in
//! an email; the answer is recorded by the POST, from the page's button or straight from a mail
//! program that posts the link (the answer then comes in the query). Answering again changes
//! the answer, as a reply may arrive after someone said there was none.
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::clock::now_ms;
use crate::error::AppError;
use crate::rate_limit::Action;
use crate::routes::input::{read_body, Input};
use crate::routes::pages::{error_page, no_store, render};
use crate::state::AppState;
use crate::workers::reply_survey::{self, Answer, Survey};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(reply_page).service(reply_submit);
}

const CHOOSE: &str = "Choose the answer that fits best.";

fn not_found() -> AppError {
    AppError::NotFound(
        "token_not_found",
        "This link is not valid any more. It may have expired, or the letter it was about has been deleted. There is nothing you need to do.".into(),
    )
}

/// The `answer` in the link's query, as sent (it may be anything).
fn query_answer(req: &HttpRequest) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).find(|(k, _)| k == "answer").map(|(_, v)| v.into_owned())
}

async fn find_survey(state: &AppState, token: String) -> Result<Survey, AppError> {
    state.db.read(move |conn| reply_survey::survey_for_token(conn, &token, now_ms())).await?.ok_or_else(not_found)
}

#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

fn context(token: &str, survey: &Survey, chosen: Option<Answer>) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("token", token);
    ctx.insert("mp_name", &survey.mp_name);
    ctx.insert("constituency", &survey.constituency);
    ctx.insert("campaign", &serde_json::json!({"slug": survey.campaign_slug, "title": survey.campaign_title}));
    ctx.insert("current", &survey.answer.map(Answer::label));
    let choices: Vec<Choice> = Answer::ALL.into_iter().map(|a| Choice { value: a.as_str(), label: a.label(), checked: Some(a) == chosen }).collect();
    ctx.insert("choices", &choices);
    ctx.insert("done", &false);
    ctx.insert("error", &None::<&str>);
    ctx
}

#[get("/replies/{token}")]
async fn reply_page(state: web::Data<AppState>, token: web::Path<String>, req: HttpRequest) -> HttpResponse {
    let token = token.into_inner();
    let r = async {
        let survey = find_survey(&state, token.clone()).await?;
        // The link's answer is chosen ready; otherwise the one given before, if any.
        let chosen = query_answer(&req).as_deref().and_then(Answer::parse).or(survey.answer);
        Ok::<_, AppError>(render(&state, StatusCode::OK, "reply.html", context(&token, &survey, chosen)))
    }
    .await;
    no_store(r.unwrap_or_else(|e| error_page(&state, &e)))
}

#[post("/replies/{token}")]
async fn reply_submit(state: web::Data<AppState>, token: web::Path<String>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let token = token.into_inner();
    let r = async {
        state.limits.check(Action::Confirm, &req)?;
        let body = read_body(&req, body).await?;
        let form = Input::from_form_slice(&body)?;
        // The page's form sends the answer in the body; a mail program posting the link sends
        // it in the query.
        let sent = form.raw("answer").map(str::to_string).or_else(|| query_answer(&req));
        let survey = find_survey(&state, token.clone()).await?;
        let Some(answer) = sent.as_deref().and_then(Answer::parse) else {
            let mut ctx = context(&token, &survey, None);
            ctx.insert("error", CHOOSE);
            return Ok(render(&state, StatusCode::UNPROCESSABLE_ENTITY, "reply.html", ctx));
        };
        let (letter_id, now) = (survey.letter_id, state.clock.now());
        let changed = state.db.write(move |conn| Ok(reply_survey::record_answer(conn, letter_id, answer, now)?)).await?;
        if changed == 0 {
            // The letter was deleted between reading and writing.
            return Err(not_found());
        }
        let mut ctx = context(&token, &survey, Some(answer));
        ctx.insert("done", &true);
        ctx.insert("answer", answer.label());
        ctx.insert("changed", &survey.answer.is_some_and(|a| a != answer));
        Ok(render(&state, StatusCode::OK, "reply.html", ctx))
    }
    .await;
    no_store(r.unwrap_or_else(|e| error_page(&state, &e)))
}
