//! Constituencies and their MPs: CSV import, sync from the Members API, on-demand lookup.
//!
//! Three ways fill the `members` table, all through `models::members::set_seat`, so a seat has
//! at most one MP and a member sits for at most one seat:
//!
//! * `import_csv` reads a file in the layout of the public `mp_lookup.csv` (ONS codes included),
//!   the way to load every constituency at once;
//! * `sync` asks the Members API about every current MP. The API names constituencies but has no
//!   ONS codes, so it can only update constituencies Rally already knows; others are reported;
//! * `mp_for` answers for one constituency, asking the API on demand when Rally has not checked
//!   it in the last day, so a new install works before anyone runs an import.
//!
//! A constituency whose `mp_checked_at` is set but has no member row is vacant.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use diesel::Connection;
use futures_util::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::clock::{now_ms, DAY};
use crate::db::{Db, DbConn};
use crate::domain::EmailAddress;
use crate::error::AppError;
use crate::models::constituencies::{self, Constituency, Upserted};
use crate::models::members::{self, Holder, Member, SeatChange};
use crate::models::settings;
use crate::services::members::{CurrentMember, MembersClient, UpstreamError};

/// An MP as pages, letters and the API show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mp {
    pub member_id: Option<i64>,
    pub name: String,
    pub party: Option<String>,
    pub email: Option<String>,
    /// Parliament's contact page for the member: a way to write even without an email address.
    pub contact_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MpStatus {
    Known(Mp),
    /// Rally has checked: the seat has no MP (a death, resignation or dissolution).
    Vacant,
    /// The constituency is not in Rally's table.
    Unknown,
}

/// Parliament's public contact page for a member.
pub fn contact_url(member_id: i64) -> String {
    format!("https://members.parliament.uk/member/{member_id}/contact")
}

impl From<Member> for Mp {
    fn from(m: Member) -> Self {
        Mp { member_id: Some(m.id), name: m.name, party: m.party, email: m.email, contact_url: Some(contact_url(m.id)) }
    }
}

// ---------------------------------------------------------------------------------------------
// On-demand lookup
// ---------------------------------------------------------------------------------------------

/// How long "no MP" stays believed before the Members API is asked again.
const RECHECK_VACANT_AFTER_MS: i64 = DAY;

/// The MP for a constituency, from the database or (when never or not recently checked) from the
/// Members API, whose answer is then cached.
pub async fn mp_for(state: &crate::state::AppState, ons_code: &str) -> Result<MpStatus, AppError> {
    mp_for_with(&state.db, &state.members, ons_code).await
}

/// `mp_for` without the whole application state, for workers and tests.
pub async fn mp_for_with(db: &Db, client: &MembersClient, ons_code: &str) -> Result<MpStatus, AppError> {
    let code = ons_code.to_string();
    let (constituency, seated) = db.read(move |c| Ok((constituencies::get(c, &code)?, members::in_seat(c, &code)?))).await?;
    let Some(constituency) = constituency else { return Ok(MpStatus::Unknown) };
    if let Some(member) = seated {
        return Ok(MpStatus::Known(member.into()));
    }
    let now = now_ms();
    if constituency.mp_checked_at.is_some_and(|at| now - at < RECHECK_VACANT_AFTER_MS) {
        return Ok(MpStatus::Vacant);
    }
    match ask_members_api(client, &constituency.name).await {
        Ok(holder) => store_answer(db, constituency.ons_code, holder, now).await,
        Err(e) => {
            tracing::warn!(error = %e, "MP lookup unavailable");
            // An old "vacant" beats no answer while the API is down.
            if constituency.mp_checked_at.is_some() {
                return Ok(MpStatus::Vacant);
            }
            Err(AppError::Unavailable("lookup_unavailable", "We can't look up MPs right now. Please try again in a few minutes.".into()))
        }
    }
}

/// Who the API says sits for the named constituency, with their email; `None` for a vacant seat.
async fn ask_members_api(client: &MembersClient, constituency: &str) -> Result<Option<Holder>, UpstreamError> {
    let key = normalise_name(constituency);
    // `Location` matches loosely (a town can be in several seat names), so keep the exact seat.
    let found = client.current_members(Some(constituency)).await?;
    let Some(member) = found.into_iter().find(|m| m.constituency.as_deref().map(normalise_name).as_ref() == Some(&key)) else {
        return Ok(None);
    };
    let email = client.contact_email(member.id).await?;
    Ok(Some(Holder { id: member.id, name: member.name, party: member.party, email }))
}

async fn store_answer(db: &Db, ons_code: String, holder: Option<Holder>, now: i64) -> Result<MpStatus, AppError> {
    let code = ons_code.clone();
    let stored = db
        .write(move |c| {
            constituencies::lock_for_writing(c)?;
            members::set_seat(c, &code, holder.as_ref(), now)?;
            constituencies::mark_checked(c, &code, now)?;
            Ok(members::in_seat(c, &code)?)
        })
        .await;
    let seated = match stored {
        Ok(seated) => seated,
        // Two lookups for the same seat at once on PostgreSQL: the other one stored the answer.
        Err(e) if crate::db::is_unique_violation(&e) => db.read(move |c| Ok(members::in_seat(c, &ons_code)?)).await?,
        Err(e) => return Err(e),
    };
    Ok(seated.map_or(MpStatus::Vacant, |m| MpStatus::Known(m.into())))
}

// ---------------------------------------------------------------------------------------------
// Matching constituency names
// ---------------------------------------------------------------------------------------------

/// A key under which two spellings of a constituency name compare equal: case, accents
/// ("Ynys Môn"), "&" against "and", apostrophes, full stops, hyphens, commas and spacing are
/// all ignored.
pub fn normalise_name(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for ch in name.chars().flat_map(char::to_lowercase).map(fold_accent) {
        match ch {
            c if c.is_alphanumeric() => word.push(c),
            // Inside a word: "Queen's" and "Queens", "St." and "St" are the same.
            '\'' | '’' | '‘' | '.' => {}
            '&' => {
                words.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
                words.push("and".into());
            }
            _ => words.extend((!word.is_empty()).then(|| std::mem::take(&mut word))),
        }
    }
    words.extend((!word.is_empty()).then_some(word));
    words.join(" ")
}

/// The accented letters found in UK place names (Welsh circumflexes and diaereses above all),
/// folded to their base letter. Anything else passes through.
fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
        'ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
        'ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Counting seat changes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    added: usize,
    changed: usize,
    unchanged: usize,
    vacated: usize,
}

impl Tally {
    fn count(&mut self, change: SeatChange) {
        match change {
            SeatChange::Added => self.added += 1,
            SeatChange::Changed => self.changed += 1,
            SeatChange::Unchanged => self.unchanged += 1,
            SeatChange::Vacated => self.vacated += 1,
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A bar on stderr when asked for; indicatif itself draws nothing when stderr is not a terminal.
fn progress_bar(show: bool, len: usize, what: &'static str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}

fn spinner(show: bool, what: &'static str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

// ---------------------------------------------------------------------------------------------
// CSV import
// ---------------------------------------------------------------------------------------------

/// The columns an import needs, as named in `mp_lookup.csv`; others are ignored.
pub const REQUIRED_COLUMNS: [&str; 6] = ["pcon_code", "pcon_name", "member_id", "display_as", "party_text", "member_email"];

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The line in the file where the row starts (the header is line 1).
    pub line: u64,
    pub problem: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Good rows, one per constituency.
    pub rows: usize,
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Seats that had an MP and, by the file, now have none.
    pub vacated: usize,
    /// Rows with no member: seats the file says are vacant.
    pub vacant: usize,
    pub new_constituencies: usize,
    pub renamed_constituencies: usize,
    pub bad_rows: Vec<BadRow>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Imported {} ({} new, {} renamed): {} added, {} changed, {} unchanged, {} vacated; {} in the file.",
            plural(self.rows, "constituency", "constituencies"),
            self.new_constituencies,
            self.renamed_constituencies,
            plural(self.added, "MP", "MPs"),
            self.changed,
            self.unchanged,
            plural(self.vacated, "seat", "seats"),
            plural(self.vacant, "seat has no MP", "seats have no MP"),
        )?;
        if !self.bad_rows.is_empty() {
            write!(f, " {} skipped:", plural(self.bad_rows.len(), "row was", "rows were"))?;
            for bad in &self.bad_rows {
                write!(f, "\n  {bad}")?;
            }
        }
        Ok(())
    }
}

/// One good row: a constituency and who (if anyone) sits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeatRow {
    ons_code: String,
    name: String,
    holder: Option<Holder>,
}

#[derive(Debug, Default)]
struct ParsedCsv {
    rows: Vec<SeatRow>,
    bad_rows: Vec<BadRow>,
}

/// Imports constituencies and MPs from a CSV file in one transaction (all good rows or none).
/// Bad rows are skipped and listed in the report with their line numbers; a file without the
/// required columns is refused. Blocking: call it from a CLI or `spawn_blocking`.
pub fn import_csv(db: &Db, path: &Path, progress: bool) -> anyhow::Result<ImportReport> {
    let file = std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let parsed = parse_csv(file).with_context(|| format!("could not import {}", path.display()))?;
    let mut conn = db.writer_blocking().map_err(|e| anyhow::anyhow!("{e}"))?;
    let bar = progress_bar(progress, parsed.rows.len(), "Importing");
    let now = now_ms();
    let (tally, new, renamed) = conn
        .transaction(|c| apply_rows(c, &parsed.rows, now, &bar))
        .context("could not store the imported MPs")?;
    bar.finish_and_clear();
    let report = ImportReport {
        rows: parsed.rows.len(),
        added: tally.added,
        changed: tally.changed,
        unchanged: tally.unchanged,
        vacated: tally.vacated,
        vacant: parsed.rows.iter().filter(|r| r.holder.is_none()).count(),
        new_constituencies: new,
        renamed_constituencies: renamed,
        bad_rows: parsed.bad_rows,
    };
    // Noted for the staff MP page; failing to note it must not turn a done import into an error.
    let summary = report.to_string().lines().next().unwrap_or_default().replace("skipped:", "skipped.");
    if let Err(e) = settings::put_stamped(&mut conn, settings::MPS_LAST_IMPORT, now_ms(), &summary) {
        tracing::warn!(error = %e, "could not note the time of the MP import");
    }
    Ok(report)
}

fn apply_rows(conn: &mut DbConn, rows: &[SeatRow], now: i64, bar: &ProgressBar) -> diesel::QueryResult<(Tally, usize, usize)> {
    constituencies::lock_for_writing(conn)?;
    let (mut tally, mut new, mut renamed) = (Tally::default(), 0, 0);
    for row in rows {
        match constituencies::upsert(conn, &row.ons_code, &row.name)? {
            Upserted::Created => new += 1,
            Upserted::Renamed => renamed += 1,
            Upserted::Unchanged => {}
        }
        tally.count(members::set_seat(conn, &row.ons_code, row.holder.as_ref(), now)?);
        constituencies::mark_checked(conn, &row.ons_code, now)?;
        bar.inc(1);
    }
    Ok((tally, new, renamed))
}

/// Where each required column is in this file.
struct Columns {
    code: usize,
    name: usize,
    member_id: usize,
    display_as: usize,
    party: usize,
    email: usize,
}

fn find_columns(headers: &csv::ByteRecord) -> anyhow::Result<Columns> {
    let names: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).trim().to_ascii_lowercase()).collect();
    if names.iter().all(|n| n.is_empty()) {
        bail!("the file is empty; it needs a header line naming the columns {}", REQUIRED_COLUMNS.join(", "));
    }
    let position = |want: &str| names.iter().position(|n| n == want);
    let missing: Vec<&str> = REQUIRED_COLUMNS.iter().copied().filter(|c| position(c).is_none()).collect();
    if !missing.is_empty() {
        bail!(
            "the header line has no {} {} (needed: {}; other columns are ignored)",
            if missing.len() == 1 { "column" } else { "columns" },
            missing.join(", "),
            REQUIRED_COLUMNS.join(", ")
        );
    }
    let at = |want: &str| position(want).unwrap_or_default();
    Ok(Columns {
        code: at("pcon_code"),
        name: at("pcon_name"),
        member_id: at("member_id"),
        display_as: at("display_as"),
        party: at("party_text"),
        email: at("member_email"),
    })
}

fn parse_csv(input: impl Read) -> anyhow::Result<ParsedCsv> {
    // Flexible: a short row becomes a bad row with its line number, not an error for the file.
    // Records end at `\n` only: with the default (CR, LF or CRLF) the reader notes a record's
    // start before it has consumed the previous CRLF's LF, and every line number of a Windows
    // file (as `mp_lookup.csv` is) comes out one short. The CR left on the last field is
    // whitespace, which every field loses anyway.
    let mut reader = csv::ReaderBuilder::new().flexible(true).terminator(csv::Terminator::Any(b'\n')).from_reader(input);
    let columns = find_columns(reader.byte_headers().context("could not read the header line")?)?;
    let mut parsed = ParsedCsv::default();
    let mut seen_codes: HashMap<String, u64> = HashMap::new();
    let mut seen_members: HashMap<i64, u64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).context("could not read the file")? {
        // Spreadsheets leave rows of empty cells behind; they mean nothing.
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        let row = parse_row(&record, &columns).and_then(|row| {
            first_time(&mut seen_codes, row.ons_code.clone(), line, |first| format!("constituency {} is already on line {first}", row.ons_code))?;
            if let Some(h) = &row.holder {
                first_time(&mut seen_members, h.id, line, |first| format!("member {} is already on line {first}", h.id))?;
            }
            Ok(row)
        });
        match row {
            Ok(row) => parsed.rows.push(row),
            Err(problem) => parsed.bad_rows.push(BadRow { line, problem }),
        }
    }
    Ok(parsed)
}

/// Remembers where a key was first seen; a repeat is a bad row, since one file cannot say two
/// things about one seat or one member.
fn first_time<K: std::hash::Hash + Eq>(seen: &mut HashMap<K, u64>, key: K, line: u64, problem: impl FnOnce(u64) -> String) -> Result<(), String> {
    match seen.get(&key) {
        Some(&first) => Err(problem(first)),
        None => {
            seen.insert(key, line);
            Ok(())
        }
    }
}

fn parse_row(record: &csv::ByteRecord, cols: &Columns) -> Result<SeatRow, String> {
    let field = |i: usize, column: &str| -> Result<String, String> {
        let raw = record.get(i).ok_or_else(|| format!("the row has {} fields, so it has no {column}", record.len()))?;
        let text = std::str::from_utf8(raw).map_err(|_| format!("{column} is not UTF-8 text (save the file as CSV UTF-8)"))?;
        Ok(text.trim().to_string())
    };
    let ons_code = field(cols.code, "pcon_code")?.to_ascii_uppercase();
    if !is_ons_code(&ons_code) {
        return Err(format!("pcon_code `{}` is not a constituency code like E14001063", shown(&ons_code)));
    }
    let name = field(cols.name, "pcon_name")?;
    if name.is_empty() {
        return Err(format!("pcon_name is empty for {ons_code}"));
    }
    let member_id = field(cols.member_id, "member_id")?;
    // A blank member_id is how the file marks a vacant seat.
    if member_id.is_empty() {
        return Ok(SeatRow { ons_code, name, holder: None });
    }
    let id = member_id
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("member_id `{}` is not a Parliament member id (a whole number)", shown(&member_id)))?;
    let display_as = field(cols.display_as, "display_as")?;
    if display_as.is_empty() {
        return Err(format!("display_as (the MP's name) is empty for member {id}"));
    }
    let party = Some(field(cols.party, "party_text")?).filter(|p| !p.is_empty());
    let email = match field(cols.email, "member_email")? {
        // The public file writes "No email found" where an MP publishes none.
        e if !e.contains('@') => None,
        e => Some(EmailAddress::parse(&e).map_err(|_| format!("member_email `{}` is not an email address", shown(&e)))?.as_str().to_string()),
    };
    Ok(SeatRow { ons_code, name, holder: Some(Holder { id, name: display_as, party, email }) })
}

/// ONS codes for Westminster constituencies: a country letter and eight digits (E14001063).
fn is_ons_code(code: &str) -> bool {
    let mut chars = code.chars();
    matches!(chars.next(), Some('E' | 'W' | 'S' | 'N')) && code.len() == 9 && chars.all(|c| c.is_ascii_digit())
}

/// Input quoted back in a message, cut short so one bad cell cannot flood the terminal.
fn shown(value: &str) -> String {
    const MAX: usize = 60;
    if value.chars().count() <= MAX {
        value.to_string()
    } else {
        format!("{}…", value.chars().take(MAX).collect::<String>())
    }
}

// ---------------------------------------------------------------------------------------------
// Sync from the Members API
// ---------------------------------------------------------------------------------------------

/// Contact lookups run this many at a time: quicker than one by one, still polite to Parliament.
const CONTACT_CONCURRENCY: usize = 4;
const ATTEMPTS: u32 = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Current MPs the Members API listed.
    pub members: usize,
    /// Constituencies Rally knew, all of which were checked.
    pub constituencies: usize,
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Seats that had an MP and now, by the API, have none.
    pub vacated: usize,
    /// Seats with no MP after the sync.
    pub vacant: usize,
    /// MPs whose constituency Rally does not know by that name: "Name (Constituency)".
    pub unmatched: Vec<String>,
    /// MPs whose contact details could not be fetched; their stored email was kept.
    pub contact_failures: Vec<String>,
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Checked {} against {}: {} added, {} changed, {} unchanged, {} vacated; {} without an MP.",
            plural(self.members, "current MP", "current MPs"),
            plural(self.constituencies, "known constituency", "known constituencies"),
            plural(self.added, "MP", "MPs"),
            self.changed,
            self.unchanged,
            plural(self.vacated, "seat", "seats"),
            plural(self.vacant, "seat is", "seats are"),
        )?;
        if !self.unmatched.is_empty() {
            write!(
                f,
                " {} for constituencies Rally does not know yet (the Members API gives no ONS codes: run `rally mps import`, \
                 or they are added as supporters' postcodes are looked up): {}.",
                plural(self.unmatched.len(), "MP sits", "MPs sit"),
                list_some(&self.unmatched)
            )?;
        }
        if !self.contact_failures.is_empty() {
            write!(
                f,
                " Contact details could not be fetched for {}, so their stored email was kept: {}.",
                plural(self.contact_failures.len(), "MP", "MPs"),
                list_some(&self.contact_failures)
            )?;
        }
        Ok(())
    }
}

/// The first few names of a long list, and how many more.
fn list_some(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// Updates the MP of every constituency Rally knows from the Members API's list of current MPs,
/// with each matched MP's email from their contact details. Nothing is written until everything
/// has been fetched, and then all in one transaction.
pub async fn sync(db: &Db, client: &MembersClient, progress: bool) -> anyhow::Result<SyncReport> {
    let listing = spinner(progress, "Listing current MPs from the Members API");
    let listed = with_retries(|| client.current_members(None)).await;
    listing.finish_and_clear();
    let listed = listed.with_context(|| format!("could not list current MPs from the Members API at {}", client.base()))?;
    // An empty list is far likelier a fault than a Commons without MPs; vacating every seat on
    // it would be worse than doing nothing.
    anyhow::ensure!(!listed.is_empty(), "the Members API at {} listed no current MPs, so nothing was changed", client.base());
    let seats = db.read(|c| Ok(constituencies::all(c)?)).await?;
    let matched = match_members(&seats, listed);
    let emails = fetch_emails(client, &matched.by_code, progress).await;
    let mut contact_failures = Vec::new();
    let plan: Vec<PlannedSeat> = seats
        .iter()
        .map(|seat| {
            let member = matched.by_code.get(&seat.ons_code);
            let email = member.and_then(|m| emails.get(&m.id));
            if let (Some(m), Some(Err(e))) = (member, email) {
                tracing::warn!(member_id = m.id, error = %e, "could not fetch an MP's contact details");
                contact_failures.push(m.name.clone());
            }
            PlannedSeat {
                ons_code: seat.ons_code.clone(),
                keep_stored_email: matches!(email, Some(Err(_))),
                holder: member.map(|m| Holder {
                    id: m.id,
                    name: m.name.clone(),
                    party: m.party.clone(),
                    email: email.and_then(|e| e.as_ref().ok().cloned().flatten()),
                }),
            }
        })
        .collect();
    let vacant = plan.iter().filter(|p| p.holder.is_none()).count();
    let tally = db.write(move |c| Ok(apply_plan(c, &plan, now_ms())?)).await?;
    let report = SyncReport {
        members: matched.listed,
        constituencies: seats.len(),
        added: tally.added,
        changed: tally.changed,
        unchanged: tally.unchanged,
        vacated: tally.vacated,
        vacant,
        unmatched: matched.unmatched,
        contact_failures,
    };
    // Noted for the staff MP page; failing to note it must not turn a done sync into an error.
    let summary = report.to_string();
    if let Err(e) = db.write(move |c| Ok(settings::put_stamped(c, settings::MPS_LAST_SYNC, now_ms(), &summary)?)).await {
        tracing::warn!(error = %e, "could not note the time of the MP sync");
    }
    Ok(report)
}

/// One constituency's MP as the sync found it.
struct PlannedSeat {
    ons_code: String,
    holder: Option<Holder>,
    /// The contact lookup failed: keep whatever email is stored rather than erase it.
    keep_stored_email: bool,
}

fn apply_plan(conn: &mut DbConn, plan: &[PlannedSeat], now: i64) -> diesel::QueryResult<Tally> {
    constituencies::lock_for_writing(conn)?;
    let mut tally = Tally::default();
    for seat in plan {
        let mut holder = seat.holder.clone();
        if let Some(h) = holder.as_mut().filter(|_| seat.keep_stored_email) {
            h.email = members::find(conn, h.id)?.and_then(|m| m.email);
        }
        tally.count(members::set_seat(conn, &seat.ons_code, holder.as_ref(), now)?);
        constituencies::mark_checked(conn, &seat.ons_code, now)?;
    }
    Ok(tally)
}

struct Matched {
    /// Distinct members listed.
    listed: usize,
    by_code: BTreeMap<String, CurrentMember>,
    unmatched: Vec<String>,
}

/// Pairs each current MP with a known constituency by name.
fn match_members(seats: &[Constituency], listed: Vec<CurrentMember>) -> Matched {
    // `seats` is sorted by ONS code, so when two share a name (old and new boundaries, both seen
    // by postcode lookups) the later, newer code wins.
    let by_name: HashMap<String, &str> = seats.iter().map(|c| (normalise_name(&c.name), c.ons_code.as_str())).collect();
    let mut seen = HashSet::new();
    let mut matched = Matched { listed: 0, by_code: BTreeMap::new(), unmatched: Vec::new() };
    for member in listed {
        // Pages can shift while they are read; a member seen twice counts once.
        if !seen.insert(member.id) {
            continue;
        }
        matched.listed += 1;
        let code = member.constituency.as_deref().and_then(|name| by_name.get(&normalise_name(name)));
        match code {
            Some(code) if !matched.by_code.contains_key(*code) => {
                matched.by_code.insert(code.to_string(), member);
            }
            _ => matched.unmatched.push(format!("{} ({})", member.name, member.constituency.as_deref().unwrap_or("no constituency given"))),
        }
    }
    matched
}

/// Each matched MP's email; a failed lookup is kept as an error so the stored email survives it.
async fn fetch_emails(client: &MembersClient, by_code: &BTreeMap<String, CurrentMember>, progress: bool) -> HashMap<i64, Result<Option<String>, UpstreamError>> {
    let bar = progress_bar(progress, by_code.len(), "Contacts");
    let results = stream::iter(by_code.values().map(|m| m.id))
        .map(|id| {
            let bar = &bar;
            async move {
                let email = with_retries(|| client.contact_email(id)).await;
                bar.inc(1);
                (id, email)
            }
        })
        .buffer_unordered(CONTACT_CONCURRENCY)
        .collect()
        .await;
    bar.finish_and_clear();
    results
}

/// A sync makes hundreds of calls: a brief blip should not sink it, so each call gets a few
/// tries with a growing pause. (On-demand lookups do not retry: someone is waiting.)
async fn with_retries<T, F, Fut>(mut call: F) -> Result<T, UpstreamError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    let mut pause = Duration::from_millis(500);
    for _ in 1..ATTEMPTS {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) => tracing::debug!(error = %e, "retrying a Members API call"),
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    call().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_across_spellings() {
        assert_eq!(normalise_name("Ynys Môn"), "ynys mon");
        assert_eq!(normalise_name("YNYS MON"), "ynys mon");
        assert_eq!(normalise_name("Queen’s Park and Maida Vale"), normalise_name("Queens Park & Maida Vale"));
        assert_eq!(normalise_name("Harborough, Oadby and Wigston"), "harborough oadby and wigston");
        assert_eq!(normalise_name(" Aldridge-Brownhills "), "aldridge brownhills");
        assert_eq!(normalise_name("St. Albans"), normalise_name("St Albans"));
        assert_ne!(normalise_name("Norwich North"), normalise_name("Norwich South"));
    }

    #[test]
    fn checks_ons_codes() {
        assert!(is_ons_code("E14001063"));
        assert!(is_ons_code("W07000112"));
        assert!(!is_ons_code("E1400106"));
        assert!(!is_ons_code("X14001063"));
        assert!(!is_ons_code("E1400106é"));
    }

    #[test]
    fn parses_quoted_rows_and_reports_bad_ones_by_line() {
        let csv = "\"extra\",\"pcon_name\",\"pcon_code\",\"member_id\",\"display_as\",\"party_text\",\"member_email\"\r\n\
                   \"x\",\"Harborough, Oadby and Wigston\",\"E14001266\",\"4679\",\"Neil O'Brien\",\"Conservative\",\"neil.obrien.mp@parliament.uk\"\r\n\
                   x,Vacant Town,E14009999,,,,\r\n\
                   x,Bad,E1,1,A,B,\r\n\
                   x,Also bad,E14001267,abc,A,B,\r\n\
                   ,,,,,,\r\n\
                   x,Dup,E14001266,77,A,,\r\n\
                   x,Preston,E14001433,473,Sir Mark Hendrick,Labour (Co-op),No email found\r\n\
                   x,Typo,E14001434,474,A,B,someone@\r\n";
        let parsed = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(parsed.rows.len(), 3);
        assert_eq!(parsed.rows[0].name, "Harborough, Oadby and Wigston");
        assert_eq!(parsed.rows[0].holder.as_ref().and_then(|h| h.email.as_deref()), Some("neil.obrien.mp@parliament.uk"));
        assert_eq!(parsed.rows[1].holder, None);
        assert_eq!(parsed.rows[2].holder.as_ref().map(|h| h.email.is_none()), Some(true));
        let lines: Vec<u64> = parsed.bad_rows.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![4, 5, 7, 9]);
        assert!(parsed.bad_rows[2].problem.contains("already on line 2"));
    }

    #[test]
    fn names_missing_columns() {
        let err = parse_csv("pcon_code,pcon_name,member_id\n".as_bytes()).err().unwrap().to_string();
        assert!(err.contains("display_as, party_text, member_email"), "{err}");
    }
}
