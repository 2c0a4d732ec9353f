//! Signing a petition. The signature and its confirmation email are written in one transaction;
//! nothing here waits on postcodes.io or on the mail server.
use crate::clock::{now_ms, DAY};
use std::any::Any;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::db::{Db, DbConn};
use crate::domain::{EmailAddress, PersonName, UkPostcode};
use crate::error::{AppError, FieldErrors};
use crate::models::campaigns::{self, Campaign, CampaignState};
use crate::models::{outbox, postcodes, signatures};
use crate::routes::input::Input;
use crate::state::AppState;

pub const CONFIRM_EMAIL: &str = "signature_confirm";
pub const ALREADY_SIGNED_EMAIL: &str = "signature_already_confirmed";
/// A repeat signer gets a fresh email, but a mailbox is never sent more than this many a day
/// about one petition, so the form cannot be used to flood someone's inbox.
const EMAILS_PER_DAY: i64 = 5;

#[derive(Debug, Clone)]
pub struct SignatureRequest {
    pub name: PersonName,
    pub email: EmailAddress,
    pub postcode: UkPostcode,
    pub updates_opt_in: bool,
    pub show_name: bool,
}

impl SignatureRequest {
    pub fn parse(input: &mut Input) -> Result<Self, FieldErrors> {
        let name = input.text("name");
        let name = input.check("name", PersonName::parse(&name));
        let email = input.text("email");
        let email = input.check("email", EmailAddress::parse(&email));
        let postcode = input.text("postcode");
        let postcode = input.check("postcode", UkPostcode::parse(&postcode));
        let consent = input.flag("consent");
        if !consent && input.errors.first("consent").is_none() {
            input.errors.add("consent", "Tick the box to say you have read the privacy notice and agree to it.");
        }
        let updates_opt_in = input.flag("updates_opt_in");
        let show_name = input.flag("show_name");
        match (name, email, postcode) {
            (Some(name), Some(email), Some(postcode)) if input.errors.is_empty() => {
                Ok(SignatureRequest { name, email, postcode, updates_opt_in, show_name })
            }
            _ => Err(std::mem::take(&mut input.errors)),
        }
    }
}

/// Stores a signature (or recognises a repeat) and queues the right email. The answer is the
/// same either way, so the response never tells anyone whether an address has signed.
///
/// Everything that only reads (the campaign, the postcode's constituency) happens before the
/// write, on a reader, so the one writer does as little as possible per signature.
pub async fn sign(state: &AppState, slug: &str, req: SignatureRequest) -> Result<(), AppError> {
    let campaign = state.sign_lookups.campaign(&state.db, slug).await?;
    match campaign.effective_state(now_ms()) {
        CampaignState::Open => {}
        CampaignState::Closed => return Err(closed()),
        CampaignState::Draft => return Err(AppError::campaign_not_found()),
    }
    let campaign_id = campaign.id;
    // Use the constituency at once if the postcode is already known; otherwise the backfill fills it in.
    let ons_code = state.sign_lookups.constituency(&state.db, req.postcode.as_str()).await?;
    let needs_place = ons_code.is_none();
    // The common case, a new signer, goes in with every other new signer of the same moment.
    let fresh = signatures::Fresh {
        campaign_id,
        name: req.name.as_str().to_string(),
        email: req.email.as_str().to_string(),
        email_key: req.email.mailbox_key(),
        postcode: req.postcode.as_str().to_string(),
        ons_code,
        updates_opt_in: req.updates_opt_in,
        show_name: req.show_name,
        created_at: now_ms(),
    };
    let inserted = match state.db.write_together::<Result<i64, signatures::Fresh>>(insert_fresh, Box::new(fresh)).await? {
        Ok(_) => true,
        // A mailbox that has signed before: decide which email it gets. (If its signature has
        // just been deleted on request, this is a new signer again.)
        Err(fresh) => state
            .db
            .write(move |conn| {
                let now = now_ms();
                match signatures::find_by_mailbox(conn, campaign_id, &fresh.email_key)? {
                    None => Ok(insert_and_queue(conn, std::slice::from_ref(&fresh))?[0].is_some()),
                    Some(existing) => {
                        let recent = outbox::count_since(conn, &[CONFIRM_EMAIL, ALREADY_SIGNED_EMAIL], existing.id, now - DAY)?;
                        if recent < EMAILS_PER_DAY {
                            let kind = if existing.state == signatures::PENDING { CONFIRM_EMAIL } else { ALREADY_SIGNED_EMAIL };
                            outbox::enqueue(conn, kind, existing.id, now)?;
                        }
                        Ok(false)
                    }
                }
            })
            .await?,
    };
    state.outbox_wake.notify_one();
    if inserted && needs_place {
        state.backfill_wake.notify_one();
    }
    Ok(())
}

/// Inserts the signers whose mailbox has not signed (ON CONFLICT DO NOTHING, so a twin request
/// racing on PostgreSQL is a repeat, not an error) and queues their confirmation emails.
fn insert_and_queue(conn: &mut DbConn, fresh: &[signatures::Fresh]) -> Result<Vec<Option<i64>>, AppError> {
    let ids = signatures::insert_new_many(conn, fresh)?;
    let new: Vec<i64> = ids.iter().flatten().copied().collect();
    outbox::enqueue_many(conn, CONFIRM_EMAIL, &new, now_ms())?;
    Ok(ids)
}

/// Inserts a batch's new signers and queues their confirmation emails: two statements for the
/// whole batch. Answers each with its new id, or gives the signer back (`Err`) for a mailbox that
/// has signed already.
fn insert_fresh(conn: &mut DbConn, items: Vec<Box<dyn Any + Send>>) -> Result<Vec<Result<Box<dyn Any + Send>, AppError>>, AppError> {
    let fresh: Vec<signatures::Fresh> = items
        .into_iter()
        .map(|item| item.downcast::<signatures::Fresh>().map(|f| *f).map_err(|_| AppError::internal(anyhow::anyhow!("not a signature"))))
        .collect::<Result<_, _>>()?;
    let ids = insert_and_queue(conn, &fresh)?;
    // A repeat gets its signer back, for the path that decides which email it gets.
    Ok(ids.into_iter().zip(fresh).map(|(id, f)| Ok(Box::new(id.ok_or(f)) as Box<dyn Any + Send>)).collect())
}

/// What signing reads, remembered briefly so a rush of signers does not read the same campaign
/// and postcodes over and over. Staff changes clear it (see `startup`).
#[derive(Default)]
pub struct Lookups {
    campaigns: RwLock<HashMap<String, (Instant, Campaign)>>,
    places: RwLock<HashMap<String, (Instant, Option<String>)>>,
}

const CAMPAIGN_FRESH: Duration = Duration::from_secs(1);
const PLACE_FRESH: Duration = Duration::from_secs(60);
const UNPLACED_FRESH: Duration = Duration::from_secs(5);
const MAX_PLACES: usize = 100_000;

impl Lookups {
    pub fn clear(&self) {
        self.campaigns.write().expect("lookups lock").clear();
    }

    async fn campaign(&self, db: &Db, slug: &str) -> Result<Campaign, AppError> {
        if let Some((at, c)) = self.campaigns.read().expect("lookups lock").get(slug) {
            if at.elapsed() < CAMPAIGN_FRESH {
                return Ok(c.clone());
            }
        }
        let wanted = slug.to_string();
        let campaign = db.read(move |conn| campaigns::find_by_slug(conn, &wanted)?.ok_or_else(AppError::campaign_not_found)).await?;
        self.campaigns.write().expect("lookups lock").insert(slug.to_string(), (Instant::now(), campaign.clone()));
        Ok(campaign)
    }

    async fn constituency(&self, db: &Db, postcode: &str) -> Result<Option<String>, AppError> {
        if let Some((at, code)) = self.places.read().expect("lookups lock").get(postcode) {
            if at.elapsed() < if code.is_some() { PLACE_FRESH } else { UNPLACED_FRESH } {
                return Ok(code.clone());
            }
        }
        let wanted = postcode.to_string();
        let code = db.read(move |conn| Ok(postcodes::get(conn, &wanted)?.and_then(|p| p.ons_code))).await?;
        let mut places = self.places.write().expect("lookups lock");
        if places.len() >= MAX_PLACES {
            places.clear();
        }
        places.insert(postcode.to_string(), (Instant::now(), code.clone()));
        Ok(code)
    }
}

pub fn closed() -> AppError {
    AppError::Conflict("campaign_closed", "This petition has closed and is no longer taking signatures.".into())
}
