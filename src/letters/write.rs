//! Writing a letter: read the writer's details, find who it goes to, render it, and (on submit)
//! store it with a confirmation email in one transaction.
use serde::Serialize;

use crate::clock::{now_ms, DAY};
use crate::db::is_unique_violation;
use crate::domain::{EmailAddress, PersonName, PersonalEdit, PostalAddress, UkPostcode};
use crate::error::{AppError, FieldErrors};
use crate::letters::render::{self, CampaignContext, ConstituencyContext, LetterContext, TargetContext, WriterContext};
use crate::lookup::{self, Place};
use crate::models::campaigns::{self, Campaign, CampaignState};
use crate::models::{letter_templates, letters, outbox, targets};
use crate::mps::{self, MpStatus};
use crate::routes::input::Input;
use crate::state::AppState;

pub const MP: &str = "mp";
pub const CONFIRM_EMAIL: &str = "letter_confirm";
pub const DELIVERY: &str = "letter_delivery";
pub const COPY_EMAIL: &str = "letter_copy";
pub const FAILED_EMAIL: &str = "letter_undeliverable";
const CONFIRM_EMAILS_PER_DAY: i64 = 5;

#[derive(Debug, Clone)]
pub struct LetterRequest {
    pub target: String,
    pub name: PersonName,
    pub email: EmailAddress,
    pub postcode: UkPostcode,
    pub address: PostalAddress,
    pub personal_edit: Option<PersonalEdit>,
}

fn field_error(field: &str, problem: impl Into<String>) -> AppError {
    let mut f = FieldErrors::default();
    f.add(field, problem);
    AppError::Validation(f)
}

impl LetterRequest {
    /// JSON carries `address: {line1, line2, town}`; a form carries `address_line1`,
    /// `address_line2`, `address_town`. Problems are named `address.line1` and so on either way.
    pub fn parse(input: &mut Input) -> Result<Self, FieldErrors> {
        let target = input.text("target").trim().to_string();
        if target.is_empty() {
            input.errors.add("target", "Choose who to write to.");
        }
        let name = input.text("name");
        let name = input.check("name", PersonName::parse(&name));
        let email = input.text("email");
        let email = input.check("email", EmailAddress::parse(&email));
        let postcode = input.text("postcode");
        let postcode = input.check("postcode", UkPostcode::parse(&postcode));
        let (line1, line2, town) = match input.nested("address") {
            Some(mut a) => {
                let r = (a.text("line1"), a.text("line2"), a.text("town"));
                for (k, v) in a.errors.0 {
                    for p in v {
                        input.errors.add(&format!("address.{k}"), p);
                    }
                }
                r
            }
            None => (input.text("address_line1"), input.text("address_line2"), input.text("address_town")),
        };
        let line1 = input.check("address.line1", PostalAddress::parse_line1(&line1));
        let line2 = input.check("address.line2", PostalAddress::parse_line2(&line2));
        let town = input.check("address.town", PostalAddress::parse_town(&town));
        let edit = input.text("personal_edit");
        let personal_edit = input.check("personal_edit", PersonalEdit::parse(&edit));
        match (name, email, postcode, line1, line2, town, personal_edit) {
            (Some(name), Some(email), Some(postcode), Some(line1), Some(line2), Some(town), Some(personal_edit)) if input.errors.is_empty() => {
                Ok(LetterRequest { target, name, email, postcode, address: PostalAddress { line1, line2, town }, personal_edit })
            }
            _ => Err(std::mem::take(&mut input.errors)),
        }
    }
}

/// A letter ready to preview or send.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    #[serde(skip)]
    pub campaign: CampaignRef,
    pub target_key: String,
    pub to_name: String,
    pub to_email: String,
    pub ons_code: String,
    pub constituency: String,
    pub subject: String,
    pub body: String,
    /// False when the writer added nothing of their own: MPs give identical letters little weight.
    pub personalised: bool,
}

#[derive(Debug, Clone, Default)]
pub struct CampaignRef {
    pub id: i64,
    pub slug: String,
}

/// Finds the open campaign a letter is for.
async fn open_campaign(state: &AppState, slug: &str) -> Result<Campaign, AppError> {
    let slug = slug.to_string();
    let c = state.db.read(move |conn| Ok(campaigns::find_by_slug(conn, &slug)?)).await?;
    let c = c.filter(|c| c.state != "draft").ok_or_else(AppError::campaign_not_found)?;
    if c.effective_state(now_ms()) != CampaignState::Open {
        return Err(crate::petition::sign::closed());
    }
    Ok(c)
}

/// Who a letter goes to.
struct Recipient {
    target: TargetContext,
    email: String,
}

/// Resolves a target key: the MP for the writer's constituency, or one of the campaign's fixed targets.
async fn resolve_target(state: &AppState, campaign: &Campaign, key: &str, place: &ConstituencyContext) -> Result<Recipient, AppError> {
    if key == MP {
        return match mps::mp_for(state, &place.ons_code).await? {
            MpStatus::Known(mp) => match mp.email {
                Some(email) => Ok(Recipient {
                    target: TargetContext { salutation: format!("Dear {}", mp.name), title: format!("MP for {}", place.name), name: mp.name },
                    email,
                }),
                None => Err(field_error(
                    "target",
                    match mp.contact_url {
                        Some(url) => format!("{} has no public email address. You can contact them through their page on the Parliament website: {url}", mp.name),
                        None => format!("{} has no public email address.", mp.name),
                    },
                )),
            },
            MpStatus::Vacant => Err(field_error("target", format!("{} has no MP at the moment: the seat is vacant.", place.name))),
            MpStatus::Unknown => Err(field_error("target", format!("We don't know who the MP for {} is yet. Please try again later.", place.name))),
        };
    }
    let campaign_id = campaign.id;
    let list = state.db.read(move |conn| Ok(targets::for_campaign(conn, campaign_id)?)).await?;
    match list.into_iter().find(|t| t.key == key) {
        Some(t) => Ok(Recipient { target: TargetContext { name: t.name, salutation: t.salutation, title: t.title }, email: t.email }),
        None => Err(field_error("target", "Choose who to write to: your MP or one of the people this campaign names.")),
    }
}

/// Renders the letter for a request, resolving the constituency and the recipient.
pub async fn prepare(state: &AppState, slug: &str, req: &LetterRequest) -> Result<Prepared, AppError> {
    let campaign = open_campaign(state, slug).await?;
    let place = match lookup::constituency_for(state, &req.postcode).await? {
        Place::Found { ons_code, name } => ConstituencyContext { ons_code, name },
        Place::NotFound => return Err(field_error("postcode", "We couldn't find that postcode. Check it and try again.")),
        Place::Terminated => return Err(field_error("postcode", "That postcode is no longer in use. Enter the postcode you use now.")),
    };
    let recipient = resolve_target(state, &campaign, &req.target, &place).await?;
    let (campaign_id, key) = (campaign.id, req.target.clone());
    let template = state
        .db
        .read(move |conn| Ok(letter_templates::current(conn, campaign_id, &key)?))
        .await?
        .ok_or_else(|| field_error("target", "This campaign has no letter for that recipient yet."))?;
    let ctx = LetterContext {
        target: recipient.target.clone(),
        writer: WriterContext { name: req.name.as_str().into(), address: req.address.clone(), postcode: req.postcode.as_str().into() },
        constituency: place.clone(),
        campaign: CampaignContext { slug: campaign.slug.clone(), title: campaign.title.clone() },
        personal_edit: req.personal_edit.as_ref().map(|e| e.as_str().to_string()).unwrap_or_default(),
    };
    let name = format!("{}/{}", campaign.slug, req.target);
    // Real links (the constituency page) start with the public address.
    let letter = render::render_at(&name, &template.subject, &template.body, &ctx, &state.config.public_url).map_err(|e| {
        tracing::error!(template = %e.name, reason = %e.reason, "letter template failed");
        AppError::Unavailable("letter_unavailable", format!("This letter can't be written right now because its template has an error ({e}). The campaign team has been told."))
    })?;
    Ok(Prepared {
        campaign: CampaignRef { id: campaign.id, slug: campaign.slug },
        target_key: req.target.clone(),
        to_name: recipient.target.name,
        to_email: recipient.email,
        ons_code: place.ons_code,
        constituency: place.name,
        subject: letter.subject,
        body: letter.body,
        personalised: req.personal_edit.is_some(),
    })
}

pub fn already_written() -> AppError {
    AppError::Conflict("already_written", "You have already written this letter: each person can send it to each recipient once.".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// A confirmation link is on its way to the writer.
    AwaitingConfirmation,
    /// The writer proved their address moments ago in this browser: queued for delivery.
    Queued,
}

/// Stores the letter and queues its confirmation email, or, when `proven_mailbox` is the writer's
/// (they confirmed in this browser moments ago), queues it for delivery at once. A writer who
/// submits again before confirming replaces their draft; once confirmed, a second letter is a 409.
pub async fn submit(state: &AppState, slug: &str, req: LetterRequest, proven_mailbox: Option<String>) -> Result<Submitted, AppError> {
    let proven = proven_mailbox.is_some_and(|m| m == req.email.mailbox_key());
    let prepared = prepare(state, slug, &req).await?;
    let attempt = |req: LetterRequest, p: Prepared| {
        state.db.write(move |conn| {
            let now = now_ms();
            let key = req.email.mailbox_key();
            let new = letters::NewLetter {
                campaign_id: p.campaign.id,
                target_key: &p.target_key,
                target_name: &p.to_name,
                target_email: &p.to_email,
                ons_code: Some(&p.ons_code),
                writer_name: req.name.as_str(),
                writer_email: req.email.as_str(),
                writer_email_key: &key,
                address_line1: &req.address.line1,
                address_line2: req.address.line2.as_deref(),
                town: &req.address.town,
                postcode: req.postcode.as_str(),
                personal_edit: req.personal_edit.as_ref().map(|e| e.as_str()),
                subject: &p.subject,
                body: &p.body,
                state: letters::PENDING,
                created_at: now,
            };
            let id = match letters::find_by_writer(conn, p.campaign.id, &p.target_key, &key)? {
                None => letters::insert(conn, &new)?,
                Some(existing) if existing.state == letters::PENDING => {
                    letters::replace_pending(conn, existing.id, &new)?;
                    existing.id
                }
                Some(_) => return Err(already_written()),
            };
            if proven {
                letters::confirm(conn, id, now)?;
                outbox::enqueue(conn, DELIVERY, id, now)?;
                return Ok(Submitted::Queued);
            }
            if outbox::count_since(conn, &[CONFIRM_EMAIL], id, now - DAY)? < CONFIRM_EMAILS_PER_DAY {
                outbox::enqueue(conn, CONFIRM_EMAIL, id, now)?;
            }
            Ok(Submitted::AwaitingConfirmation)
        })
    };
    let submitted = match attempt(req.clone(), prepared.clone()).await {
        Err(e) if is_unique_violation(&e) => attempt(req, prepared).await?,
        other => other?,
    };
    state.outbox_wake.notify_one();
    Ok(submitted)
}
