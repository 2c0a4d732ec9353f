//! A client for the UK Parliament Members API (`RALLY_MEMBERS_API_URL`), which says who sits
//! for each House of Commons constituency and how to reach them.
//!
//! Only the two endpoints Rally needs are wrapped: `/api/Members/Search` (current Commons
//! members, optionally for one place) and `/api/Members/{id}/Contact` (their addresses). The API
//! names constituencies but gives no ONS codes, so matching to Rally's constituencies is done by
//! name in `crate::mps`.
use std::time::Duration;

use serde::Deserialize;

use crate::domain::EmailAddress;
use crate::services::breaker::{Breaker, Guarded};

#[derive(Clone)]
pub struct MembersClient {
    http: reqwest::Client,
    base: String,
    breaker: Breaker,
}

#[derive(Debug, thiserror::Error)]
#[error("Members API request failed: {0}")]
pub struct UpstreamError(String);

/// A sitting MP as the Members API describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentMember {
    /// Parliament's member id, stable across elections and name changes.
    pub id: i64,
    pub name: String,
    pub party: Option<String>,
    /// The constituency's name (`membershipFrom`); `None` if the API left it out.
    pub constituency: Option<String>,
}

/// The Commons is House 1 in the Members API (the Lords is 2).
const COMMONS: &str = "1";
/// The API's own page size limit is 20.
const PAGE_SIZE: u64 = 20;
/// A guard against an answer whose `totalResults` never lets paging end (650 MPs need 33 pages).
const MAX_PAGES: u64 = 200;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchResponse {
    #[serde(default)]
    items: Vec<SearchItem>,
    #[serde(default)]
    total_results: Option<u64>,
}

#[derive(Deserialize)]
struct SearchItem {
    #[serde(default)]
    value: Option<MemberValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberValue {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    name_display_as: Option<String>,
    #[serde(default)]
    latest_party: Option<Party>,
    #[serde(default)]
    latest_house_membership: Option<HouseMembership>,
}

#[derive(Deserialize)]
struct Party {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HouseMembership {
    #[serde(default)]
    membership_from: Option<String>,
    #[serde(default)]
    house: Option<i64>,
}

#[derive(Deserialize)]
struct ContactResponse {
    #[serde(default)]
    value: Vec<Contact>,
}

/// One of a member's contact entries: an office, a website, a social media account …
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub is_preferred: Option<bool>,
    #[serde(default)]
    pub email: Option<String>,
}

impl MembersClient {
    pub fn new(base: &str) -> Self {
        // Short timeouts: an on-demand lookup happens while a supporter waits for a page.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .user_agent(concat!("Rally/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("reqwest client");
        MembersClient { http, base: base.trim_end_matches('/').to_string(), breaker: Breaker::new("members") }
    }

    /// The base URL, for messages that say which service did not answer.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Every current Commons member, or (with `location`) those the API finds for that place,
    /// following the API's pages to the end.
    pub async fn current_members(&self, location: Option<&str>) -> Result<Vec<CurrentMember>, UpstreamError> {
        self.guarded(self.all_pages(location)).await
    }

    /// The member's email address from their contact entries, `None` when they publish none.
    pub async fn contact_email(&self, member_id: i64) -> Result<Option<String>, UpstreamError> {
        self.guarded(self.fetch_contacts(member_id)).await.map(|contacts| pick_email(&contacts))
    }

    async fn all_pages(&self, location: Option<&str>) -> Result<Vec<CurrentMember>, UpstreamError> {
        let mut members = Vec::new();
        let mut skip = 0;
        for _ in 0..MAX_PAGES {
            let page = self.search_page(location, skip).await?;
            let got = page.items.len() as u64;
            members.extend(page.items.into_iter().filter_map(|item| item.value.and_then(current_member)));
            skip += PAGE_SIZE;
            // An empty page ends paging too, so a `totalResults` larger than the truth cannot loop.
            if got == 0 || skip >= page.total_results.unwrap_or(0) {
                return Ok(members);
            }
        }
        Err(UpstreamError(format!("more than {MAX_PAGES} pages of results")))
    }

    async fn search_page(&self, location: Option<&str>, skip: u64) -> Result<SearchResponse, UpstreamError> {
        let mut url = self.url(&["api", "Members", "Search"])?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("House", COMMONS).append_pair("IsCurrentMember", "true");
            if let Some(place) = location {
                query.append_pair("Location", place);
            }
            query.append_pair("skip", &skip.to_string()).append_pair("take", &PAGE_SIZE.to_string());
        }
        let res = self.http.get(url).send().await.map_err(request_failed)?;
        if !res.status().is_success() {
            return Err(UpstreamError(format!("member search answered {}", res.status())));
        }
        res.json().await.map_err(|e| UpstreamError(format!("unreadable member search answer: {}", e.without_url())))
    }

    async fn fetch_contacts(&self, member_id: i64) -> Result<Vec<Contact>, UpstreamError> {
        let url = self.url(&["api", "Members", &member_id.to_string(), "Contact"])?;
        let res = self.http.get(url).send().await.map_err(request_failed)?;
        // A member the API does not know has no contact details; that is an answer, not an outage.
        if res.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !res.status().is_success() {
            return Err(UpstreamError(format!("contact details answered {}", res.status())));
        }
        let body: ContactResponse = res.json().await.map_err(|e| UpstreamError(format!("unreadable contact details: {}", e.without_url())))?;
        Ok(body.value)
    }

    /// Counts every failure once, whichever endpoint it came from, and stops calling for a while
    /// after several in a row.
    async fn guarded<T>(&self, call: impl std::future::Future<Output = Result<T, UpstreamError>>) -> Result<T, UpstreamError> {
        match self.breaker.call(call).await {
            Ok(v) => Ok(v),
            Err(Guarded::Failed(e)) => {
                crate::metrics::upstream_error("members");
                Err(e)
            }
            Err(Guarded::Open) => Err(UpstreamError("not called: it failed several times in a row just now".into())),
        }
    }

    fn url(&self, segments: &[&str]) -> Result<url::Url, UpstreamError> {
        let mut url = url::Url::parse(&self.base).map_err(|e| UpstreamError(format!("RALLY_MEMBERS_API_URL is not a URL: {e}")))?;
        url.path_segments_mut().map_err(|_| UpstreamError("RALLY_MEMBERS_API_URL cannot have paths".into()))?.pop_if_empty().extend(segments);
        Ok(url)
    }
}


fn request_failed(e: reqwest::Error) -> UpstreamError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    UpstreamError(format!("{what}: {}", e.without_url()))
}

/// Keeps search results that name a member; anything without an id or name is unusable.
fn current_member(v: MemberValue) -> Option<CurrentMember> {
    let membership = v.latest_house_membership;
    // The search asks for the Commons only; a stray Lords entry would have no constituency.
    if membership.as_ref().and_then(|m| m.house).is_some_and(|h| h != 1) {
        return None;
    }
    let name = v.name_display_as.map(|n| n.trim().to_string()).filter(|n| !n.is_empty())?;
    Some(CurrentMember {
        id: v.id?,
        name,
        party: v.latest_party.and_then(|p| p.name).map(|p| p.trim().to_string()).filter(|p| !p.is_empty()),
        constituency: membership.and_then(|m| m.membership_from).map(|c| c.trim().to_string()).filter(|c| !c.is_empty()),
    })
}

/// Looks at every contact entry, because the email is often not on the first one: a usable
/// address on a preferred or "Parliamentary office" entry wins, then any entry's address.
pub fn pick_email(contacts: &[Contact]) -> Option<String> {
    let usable = |c: &Contact| c.email.as_deref().and_then(|e| EmailAddress::parse(e).ok()).map(|e| e.as_str().to_string());
    let preferred = |c: &Contact| c.is_preferred == Some(true) || c.kind.as_deref().is_some_and(|k| k.trim().eq_ignore_ascii_case("Parliamentary office"));
    contacts.iter().filter(|c| preferred(c)).find_map(usable).or_else(|| contacts.iter().find_map(usable))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(kind: &str, preferred: bool, email: Option<&str>) -> Contact {
        Contact { kind: Some(kind.into()), is_preferred: Some(preferred), email: email.map(Into::into) }
    }

    #[test]
    fn picks_the_best_email_from_all_contact_entries() {
        assert_eq!(pick_email(&[]), None);
        let only_second = [contact("Parliamentary office", true, None), contact("Constituency office", false, Some("mp@parliament.uk"))];
        assert_eq!(pick_email(&only_second).as_deref(), Some("mp@parliament.uk"));
        let both = [contact("Constituency office", false, Some("office@example.org")), contact("Parliamentary office", false, Some("mp@parliament.uk"))];
        assert_eq!(pick_email(&both).as_deref(), Some("mp@parliament.uk"));
        let junk = [contact("X (formerly Twitter)", false, Some("")), contact("Website", false, Some("not an address"))];
        assert_eq!(pick_email(&junk), None);
    }

    #[test]
    fn reads_the_real_search_shape() {
        let body = serde_json::json!({"items": [{"value": {"id": 5173, "nameListAs": "Baker, Alex", "nameDisplayAs": "Alex Baker",
            "latestParty": {"id": 15, "name": "Labour", "abbreviation": "Lab"},
            "latestHouseMembership": {"membershipFrom": "Aldershot", "membershipFromId": 4000, "house": 1, "membershipEndDate": null}},
            "links": []}, {"value": {"id": null}}], "totalResults": 650, "skip": 0, "take": 20});
        let page: SearchResponse = serde_json::from_value(body).unwrap();
        let members: Vec<_> = page.items.into_iter().filter_map(|i| i.value.and_then(current_member)).collect();
        assert_eq!(members, vec![CurrentMember { id: 5173, name: "Alex Baker".into(), party: Some("Labour".into()), constituency: Some("Aldershot".into()) }]);
    }
}
