use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::db::schema::{postcodes, signatures};
use crate::db::schema::constituencies;
use crate::db::DbConn;

pub const PENDING: &str = "pending";
pub const CONFIRMED: &str = "confirmed";

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = signatures)]
pub struct Signature {
    pub id: i64,
    pub campaign_id: i64,
    pub name: String,
    pub email: String,
    pub email_key: String,
    pub postcode: String,
    pub ons_code: Option<String>,
    pub updates_opt_in: bool,
    pub show_name: bool,
    pub state: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub invalidated_reason: Option<String>,
    pub invalidated_at: Option<i64>,
}

/// A new signature, for `insert_new_many`.
#[derive(Debug, Clone)]
pub struct Fresh {
    pub campaign_id: i64,
    pub name: String,
    pub email: String,
    pub email_key: String,
    pub postcode: String,
    pub ons_code: Option<String>,
    pub updates_opt_in: bool,
    pub show_name: bool,
    pub created_at: i64,
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    campaign_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    email_key: String,
}

/// Inserts, in one statement, every signature whose mailbox has not signed that campaign; returns
/// each one's new id, or `None` where the mailbox had already signed (or appears twice here).
pub fn insert_new_many(conn: &mut DbConn, fresh: &[Fresh]) -> QueryResult<Vec<Option<i64>>> {
    use diesel::sql_types::{BigInt, Bool, Nullable, Text};
    if fresh.is_empty() {
        return Ok(Vec::new());
    }
    let pg = matches!(conn, DbConn::Pg(_));
    let mut n = 0;
    let mut p = || {
        n += 1;
        if pg { format!("${n}") } else { format!("?{n}") }
    };
    let rows: Vec<String> = fresh
        .iter()
        .map(|_| format!("({}, {}, {}, {}, {}, {}, {}, {}, '{PENDING}', {})", p(), p(), p(), p(), p(), p(), p(), p(), p()))
        .collect();
    let sql = format!(
        "INSERT INTO signatures (campaign_id, name, email, email_key, postcode, ons_code, updates_opt_in, show_name, state, created_at) \
         VALUES {} ON CONFLICT (campaign_id, email_key) DO NOTHING RETURNING id, campaign_id, email_key",
        rows.join(", ")
    );
    macro_rules! bound {
        ($query:expr) => {{
            let mut q = $query;
            for f in fresh {
                q = q
                    .bind::<BigInt, _>(f.campaign_id)
                    .bind::<Text, _>(f.name.as_str())
                    .bind::<Text, _>(f.email.as_str())
                    .bind::<Text, _>(f.email_key.as_str())
                    .bind::<Text, _>(f.postcode.as_str())
                    .bind::<Nullable<Text>, _>(f.ons_code.as_deref())
                    .bind::<Bool, _>(f.updates_opt_in)
                    .bind::<Bool, _>(f.show_name)
                    .bind::<BigInt, _>(f.created_at);
            }
            q
        }};
    }
    let inserted: Vec<Inserted> = match conn {
        DbConn::Sqlite(c) => bound!(diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>()).load(c)?,
        DbConn::Pg(c) => bound!(diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>()).load(c)?,
    };
    let mut ids: std::collections::HashMap<(i64, String), i64> = inserted.into_iter().map(|r| ((r.campaign_id, r.email_key), r.id)).collect();
    // The first of several with one mailbox took the row; the others are repeats.
    Ok(fresh.iter().map(|f| ids.remove(&(f.campaign_id, f.email_key.clone()))).collect())
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Signature>> {
    signatures::table.find(id).select(Signature::as_select()).first(conn).optional()
}

pub fn find_by_mailbox(conn: &mut DbConn, campaign_id: i64, email_key: &str) -> QueryResult<Option<Signature>> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::email_key.eq(email_key))
        .select(Signature::as_select())
        .first(conn)
        .optional()
}

/// Marks a pending signature confirmed; returns whether this call changed it.
pub fn confirm(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<bool> {
    let n = diesel::update(signatures::table.find(id).filter(signatures::state.eq(PENDING)))
        .set((signatures::state.eq(CONFIRMED), signatures::confirmed_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

pub fn confirmed_count(conn: &mut DbConn, campaign_id: i64) -> QueryResult<i64> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .count()
        .get_result(conn)
}

/// Confirmed signatures per constituency, for those whose constituency is known.
pub fn confirmed_by_constituency(conn: &mut DbConn, campaign_id: i64) -> QueryResult<Vec<(String, i64)>> {
    let rows: Vec<(Option<String>, i64)> = signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .filter(signatures::ons_code.is_not_null())
        .group_by(signatures::ons_code)
        .select((signatures::ons_code, count_star()))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(c, n)| c.map(|c| (c, n))).collect())
}

/// The most recent confirmed signers who agreed to be shown: (name, constituency code, confirmed at).
pub fn recent_public(conn: &mut DbConn, campaign_id: i64, limit: i64) -> QueryResult<Vec<(String, Option<String>, Option<i64>)>> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .filter(signatures::show_name.eq(true))
        .order(signatures::confirmed_at.desc())
        .limit(limit)
        .select((signatures::name, signatures::ons_code, signatures::confirmed_at))
        .load(conn)
}

/// Postcodes of signatures still waiting for a constituency, skipping those postcodes.io
/// already said it does not know. One index seek per postcode (a skip scan), so thousands of
/// waiting signatures with the same postcode cost no more than one.
pub fn unplaced_postcodes(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<String>> {
    let mut found = Vec::new();
    let mut after = String::new();
    // Bounded, so a long run of postcodes postcodes.io does not know cannot spin here.
    for _ in 0..limit * 4 {
        let next: Option<String> = signatures::table
            .filter(signatures::ons_code.is_null())
            .filter(signatures::postcode.gt(&after))
            .select(signatures::postcode)
            .order(signatures::postcode.asc())
            .first(conn)
            .optional()?;
        let Some(postcode) = next else { break };
        let known_bad = postcodes::table
            .filter(postcodes::postcode.eq(&postcode))
            .filter(postcodes::status.ne(crate::models::postcodes::FOUND))
            .count()
            .get_result::<i64>(conn)?
            > 0;
        if !known_bad {
            found.push(postcode.clone());
            if found.len() as i64 >= limit {
                break;
            }
        }
        after = postcode;
    }
    Ok(found)
}

pub fn place(conn: &mut DbConn, postcode: &str, ons_code: &str) -> QueryResult<usize> {
    diesel::update(signatures::table.filter(signatures::postcode.eq(postcode)).filter(signatures::ons_code.is_null()))
        .set(signatures::ons_code.eq(ons_code))
        .execute(conn)
}

/// Signatures per state across all campaigns, for metrics.
pub fn count_by_state(conn: &mut DbConn) -> QueryResult<Vec<(String, i64)>> {
    signatures::table.group_by(signatures::state).select((signatures::state, count_star())).load(conn)
}

/// Deletes signatures never confirmed and created before `cutoff`, with their tokens and queued
/// emails; returns how many signatures went.
pub fn delete_unconfirmed_before(conn: &mut DbConn, cutoff: i64) -> QueryResult<usize> {
    use crate::db::schema::{outbox, tokens};
    let stale = signatures::table.filter(signatures::state.eq(PENDING)).filter(signatures::created_at.lt(cutoff)).select(signatures::id);
    diesel::delete(tokens::table.filter(tokens::purpose.eq(crate::models::tokens::CONFIRM_SIGNATURE)).filter(tokens::subject_id.eq_any(stale)))
        .execute(conn)?;
    diesel::delete(
        outbox::table
            .filter(outbox::kind.eq_any([crate::petition::sign::CONFIRM_EMAIL, crate::petition::sign::ALREADY_SIGNED_EMAIL]))
            .filter(outbox::subject_id.eq_any(stale)),
    )
    .execute(conn)?;
    diesel::delete(signatures::table.filter(signatures::state.eq(PENDING)).filter(signatures::created_at.lt(cutoff))).execute(conn)
}

// ---- Staff views: the dashboard, search, invalidation and export ----

pub const INVALIDATED: &str = "invalidated";

diesel::define_sql_function! {
    /// Lower-cases text on both backends (SQLite folds ASCII letters only).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Confirmed signatures per campaign, for every campaign at once.
pub fn confirmed_by_campaign(conn: &mut DbConn) -> QueryResult<Vec<(i64, i64)>> {
    signatures::table
        .filter(signatures::state.eq(CONFIRMED))
        .group_by(signatures::campaign_id)
        .select((signatures::campaign_id, count_star()))
        .load(conn)
}

/// Signatures per (campaign, state), for every campaign at once.
pub fn counts_by_campaign_and_state(conn: &mut DbConn) -> QueryResult<Vec<(i64, String, i64)>> {
    signatures::table
        .group_by((signatures::campaign_id, signatures::state))
        .select((signatures::campaign_id, signatures::state, count_star()))
        .load(conn)
}

/// When the campaign's first still-confirmed signature was confirmed.
pub fn first_confirmed_at(conn: &mut DbConn, campaign_id: i64) -> QueryResult<Option<i64>> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .select(diesel::dsl::min(signatures::confirmed_at))
        .first(conn)
}

/// Confirmation times of the campaign's confirmed signatures from `since` on. Days are bucketed
/// in Rust, as date arithmetic differs between SQLite and PostgreSQL.
pub fn confirmed_times_since(conn: &mut DbConn, campaign_id: i64, since: i64) -> QueryResult<Vec<i64>> {
    let times: Vec<Option<i64>> = signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .filter(signatures::confirmed_at.ge(since))
        .select(signatures::confirmed_at)
        .load(conn)?;
    Ok(times.into_iter().flatten().collect())
}

/// Confirmed signatures whose constituency is not known (yet).
pub fn confirmed_unplaced_count(conn: &mut DbConn, campaign_id: i64) -> QueryResult<i64> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .filter(signatures::ons_code.is_null())
        .count()
        .get_result(conn)
}

/// What staff typed into the signature search, read once.
#[derive(Debug, Clone, Default)]
pub struct SignatureSearch {
    /// `%…%` (LIKE-escaped, lower case) for names, emails and constituency names; `None`: everything.
    contains: Option<String>,
    /// The postcode pattern: exact when the text parses as a postcode, else `%…%` upper case.
    postcode: Option<String>,
}

/// Escapes LIKE's wildcards so `%` and `_` typed by staff match themselves (ESCAPE '\').
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl SignatureSearch {
    pub fn new(text: &str) -> Self {
        let text = text.trim();
        if text.is_empty() {
            return Self::default();
        }
        let postcode = match crate::domain::UkPostcode::parse(text) {
            // Staff type postcodes any old way ("ne14st"); stored ones are normalised.
            Ok(p) => like_escape(p.as_str()),
            Err(_) => format!("%{}%", like_escape(&text.to_uppercase())),
        };
        SignatureSearch { contains: Some(format!("%{}%", like_escape(&text.to_lowercase()))), postcode: Some(postcode) }
    }

    fn query(&self, campaign_id: i64) -> signatures::BoxedQuery<'static, crate::db::MultiBackend> {
        let mut q = signatures::table.filter(signatures::campaign_id.eq(campaign_id)).into_boxed();
        if let (Some(contains), Some(postcode)) = (self.contains.clone(), self.postcode.clone()) {
            let in_constituency = constituencies::table
                .filter(lower(constituencies::name).like(contains.clone()).escape('\\'))
                .select(constituencies::ons_code.nullable());
            q = q.filter(
                lower(signatures::name)
                    .like(contains.clone())
                    .escape('\\')
                    .or(lower(signatures::email).like(contains).escape('\\'))
                    .or(signatures::postcode.like(postcode).escape('\\'))
                    .or(signatures::ons_code.eq_any(in_constituency)),
            );
        }
        q
    }
}

/// One search result: the signature and its constituency's name, when known.
pub type SignatureWithPlace = (Signature, Option<String>);

/// Signatures of a campaign matching `search`, newest first: one page and the total.
pub fn search(conn: &mut DbConn, campaign_id: i64, search: &SignatureSearch, limit: i64, offset: i64) -> QueryResult<(Vec<SignatureWithPlace>, i64)> {
    let total: i64 = search.query(campaign_id).count().get_result(conn)?;
    let rows: Vec<Signature> = search
        .query(campaign_id)
        .order((signatures::created_at.desc(), signatures::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(Signature::as_select())
        .load(conn)?;
    let codes: Vec<String> = rows.iter().filter_map(|s| s.ons_code.clone()).collect();
    let names: std::collections::HashMap<String, String> = constituencies::table
        .filter(constituencies::ons_code.eq_any(&codes))
        .select((constituencies::ons_code, constituencies::name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    Ok((
        rows.into_iter()
            .map(|s| {
                let place = s.ons_code.as_ref().and_then(|c| names.get(c).cloned());
                (s, place)
            })
            .collect(),
        total,
    ))
}

pub fn find_in_campaign(conn: &mut DbConn, campaign_id: i64, id: i64) -> QueryResult<Option<Signature>> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::id.eq(id))
        .select(Signature::as_select())
        .first(conn)
        .optional()
}

/// Confirmed → invalidated, taking it off the count; returns whether this call changed it.
/// The update comes first so that, on SQLite, the transaction takes the write lock at once.
pub fn invalidate(conn: &mut DbConn, campaign_id: i64, id: i64, reason: &str, now: i64) -> QueryResult<bool> {
    let n = diesel::update(signatures::table.find(id).filter(signatures::campaign_id.eq(campaign_id)).filter(signatures::state.eq(CONFIRMED)))
        .set((signatures::state.eq(INVALIDATED), signatures::invalidated_reason.eq(reason), signatures::invalidated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Invalidated → confirmed again (keeping its first confirmation time); returns whether this call changed it.
pub fn restore(conn: &mut DbConn, campaign_id: i64, id: i64) -> QueryResult<bool> {
    let n = diesel::update(signatures::table.find(id).filter(signatures::campaign_id.eq(campaign_id)).filter(signatures::state.eq(INVALIDATED)))
        .set((signatures::state.eq(CONFIRMED), signatures::invalidated_reason.eq(None::<String>), signatures::invalidated_at.eq(None::<i64>)))
        .execute(conn)?;
    Ok(n == 1)
}

/// A confirmed signer as exported to staff (fields in the order of the query's columns).
#[derive(Queryable, Debug, Clone)]
pub struct ExportRow {
    pub name: String,
    pub email: String,
    pub postcode: String,
    pub constituency: Option<String>,
    pub confirmed_at: Option<i64>,
    pub updates_opt_in: bool,
}

/// Every confirmed signer of a campaign, in the order they confirmed.
pub fn confirmed_for_export(conn: &mut DbConn, campaign_id: i64) -> QueryResult<Vec<ExportRow>> {
    signatures::table
        .left_join(constituencies::table.on(signatures::ons_code.eq(constituencies::ons_code.nullable())))
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .order((signatures::confirmed_at.asc(), signatures::id.asc()))
        .select((
            signatures::name,
            signatures::email,
            signatures::postcode,
            constituencies::name.nullable(),
            signatures::confirmed_at,
            signatures::updates_opt_in,
        ))
        .load(conn)
}
