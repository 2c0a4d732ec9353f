//! `rally mps import` and `rally mps sync`, and the on-demand MP lookup. The Members API is a
//! wiremock stub answering with the real API's shapes; CSV fixtures follow `mp_lookup.csv`.
use std::path::{Path, PathBuf};
use std::process::Command;

use rally::models::{constituencies, members};
use rally::mps::{self, ImportReport, Mp, MpStatus};
use rally::services::members::MembersClient;
use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::on_both_backends;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// The layout of the public file: every field quoted, CRLF line ends, more columns than needed.
const HEADER: &str = r#""pcon_name","pcon_code","member_id","full_title","display_as","party_text","member_email","region_name""#;

fn row(name: &str, code: &str, id: &str, display: &str, party: &str, email: &str) -> String {
    format!(r#""{name}","{code}","{id}","{display} MP","{display}","{party}","{email}","Somewhere""#)
}

fn first_file() -> Vec<String> {
    vec![
        row("Aldershot", "E14001063", "5173", "Alex Baker", "Labour", "alex.baker.mp@parliament.uk"),
        row("Harborough, Oadby and Wigston", "E14001266", "4679", "Neil O'Brien", "Conservative", "neil.obrien.mp@parliament.uk"),
        row("Ynys Môn", "W07000112", "5085", "Llinos Medi", "Plaid Cymru", "llinos.medi.mp@parliament.uk"),
        // A vacant seat: blank member and email.
        row("Vacant Town", "E14009999", "", "", "", ""),
    ]
}

fn write_csv(dir: &Path, file: &str, header: &str, rows: &[String]) -> PathBuf {
    let path = dir.join(file);
    let mut text = format!("{header}\r\n");
    for r in rows {
        text.push_str(r);
        text.push_str("\r\n");
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the blocking import off the async runtime, as the CLI does.
async fn import(app: &TestApp, path: &Path) -> anyhow::Result<ImportReport> {
    let (db, path) = (app.db(), path.to_path_buf());
    tokio::task::spawn_blocking(move || mps::import_csv(&db, &path, false)).await.unwrap()
}

async fn seated(app: &TestApp, code: &str) -> Option<members::Member> {
    let code = code.to_string();
    app.db().read(move |c| Ok(members::in_seat(c, &code)?)).await.unwrap()
}

async fn member(app: &TestApp, id: i64) -> Option<members::Member> {
    app.db().read(move |c| Ok(members::find(c, id)?)).await.unwrap()
}

async fn constituency(app: &TestApp, code: &str) -> Option<constituencies::Constituency> {
    let code = code.to_string();
    app.db().read(move |c| Ok(constituencies::get(c, &code)?)).await.unwrap()
}

// The Members API's answers, trimmed from real ones but keeping their neighbours.

fn api_member(id: i64, name: &str, party: &str, constituency: &str) -> Value {
    json!({
        "value": {
            "id": id,
            "nameListAs": name,
            "nameDisplayAs": name,
            "nameFullTitle": format!("{name} MP"),
            "nameAddressAs": name,
            "latestParty": {"id": 15, "name": party, "abbreviation": "X", "backgroundColour": "d50000", "isLordsMainParty": false},
            "gender": "F",
            "latestHouseMembership": {
                "membershipFrom": constituency, "membershipFromId": 4000 + id, "house": 1,
                "membershipStartDate": "2024-07-04T00:00:00", "membershipEndDate": null, "membershipEndReason": null,
                "membershipStatus": {"statusIsActive": true, "statusDescription": "Current Member", "statusNotes": null, "statusId": 0, "status": 0, "statusStartDate": "2024-07-04T00:00:00"}
            },
            "thumbnailUrl": format!("https://members-api.parliament.uk/api/Members/{id}/Thumbnail")
        },
        "links": [{"rel": "self", "href": format!("/Members/{id}"), "method": "GET"}]
    })
}

fn search_page(items: Vec<Value>, total: usize, skip: usize) -> Value {
    json!({"items": items, "totalResults": total, "resultContext": "Current members of the House of Commons", "skip": skip, "take": 20, "links": []})
}

fn contact(kind: &str, preferred: bool, email: Option<&str>) -> Value {
    json!({
        "type": kind, "typeDescription": kind, "typeId": 1, "isPreferred": preferred, "isWebAddress": false, "notes": null,
        "line1": "House of Commons", "line2": "London", "line3": null, "line4": null, "line5": null,
        "postcode": "SW1A 0AA", "phone": "020 7219 3000", "fax": null, "email": email
    })
}

fn web_address(kind: &str, url: &str) -> Value {
    json!({"type": kind, "typeDescription": kind, "typeId": 7, "isPreferred": false, "isWebAddress": true, "notes": null,
        "line1": url, "line2": null, "postcode": null, "phone": null, "fax": null, "email": null})
}

async fn contacts_are(api: &MockServer, id: i64, entries: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path(format!("/api/Members/{id}/Contact")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": entries, "links": []})))
        .mount(api)
        .await;
}

async fn search_answers(api: &MockServer, skip: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path("/api/Members/Search"))
        .and(query_param("House", "1"))
        .and(query_param("IsCurrentMember", "true"))
        .and(query_param("skip", skip))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(api)
        .await;
}

// ---------------------------------------------------------------------------------------------
// CSV import
// ---------------------------------------------------------------------------------------------

on_both_backends!(import_adds_then_updates_and_a_repeat_changes_nothing, |app: TestApp| async move {
    let dir = tempfile::tempdir().unwrap();
    let file = write_csv(dir.path(), "mps.csv", HEADER, &first_file());
    let report = import(&app, &file).await.unwrap();
    assert_eq!((report.rows, report.added, report.changed, report.vacant, report.new_constituencies), (4, 3, 0, 1, 4), "{report}");
    assert!(report.bad_rows.is_empty());
    assert!(report.to_string().contains("3 MPs added"), "{report}");

    // A supporter's postcode lookup now shows the MP.
    app.postcode_exists("GU11 1AA", "E14001063", "Aldershot").await;
    let answer = app.get_json("/api/postcodes/GU111AA").await;
    assert_eq!(answer["mp"]["name"], "Alex Baker");
    assert_eq!(answer["mp"]["party"], "Labour");
    assert_eq!(answer["mp"]["email"], "alex.baker.mp@parliament.uk");

    let again = import(&app, &file).await.unwrap();
    assert_eq!((again.added, again.changed, again.vacated, again.unchanged, again.new_constituencies), (0, 0, 0, 4, 0), "{again}");

    // Aldershot gets a new MP, Neil O'Brien moves to the vacant seat (leaving his own empty),
    // and Ynys Môn's MP has a new address.
    let changed = write_csv(
        dir.path(),
        "changed.csv",
        HEADER,
        &[
            row("Aldershot", "E14001063", "9001", "New Person", "Independent", ""),
            row("Harborough, Oadby and Wigston", "E14001266", "", "", "", ""),
            row("Ynys Môn", "W07000112", "5085", "Llinos Medi", "Plaid Cymru", "llinos@example.org"),
            row("Vacant Town", "E14009999", "4679", "Neil O'Brien", "Conservative", "neil.obrien.mp@parliament.uk"),
        ],
    );
    let report = import(&app, &changed).await.unwrap();
    assert_eq!((report.added, report.changed, report.vacated, report.unchanged), (1, 2, 1, 0), "{report}");
    let aldershot = seated(&app, "E14001063").await.unwrap();
    assert_eq!((aldershot.id, aldershot.name.as_str(), aldershot.email), (9001, "New Person", None));
    assert_eq!(member(&app, 5173).await.unwrap().ons_code, None, "the old MP no longer sits for Aldershot");
    assert_eq!(seated(&app, "E14001266").await, None);
    assert_eq!(seated(&app, "E14009999").await.unwrap().id, 4679);
    assert_eq!(seated(&app, "W07000112").await.unwrap().email.as_deref(), Some("llinos@example.org"));
    let answer = app.get_json("/api/postcodes/GU111AA").await;
    assert_eq!(answer["mp"]["name"], "New Person");
    assert!(answer["mp"]["email"].is_null());

    // The import counts as a check: the vacant seat is answered without asking the Members API
    // (which here is a stub that knows nothing and must not be called).
    let api = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(500)).expect(0).mount(&api).await;
    let client = MembersClient::new(&api.uri());
    assert_eq!(mps::mp_for_with(&app.db(), &client, "E14001266").await.unwrap(), MpStatus::Vacant);
    let MpStatus::Known(mp) = mps::mp_for_with(&app.db(), &client, "E14009999").await.unwrap() else { panic!("a known MP") };
    assert_eq!(mp.contact_url.as_deref(), Some("https://members.parliament.uk/member/4679/contact"));
});

on_both_backends!(import_reports_bad_rows_by_line_and_refuses_files_without_the_columns, |app: TestApp| async move {
    let dir = tempfile::tempdir().unwrap();
    // Columns in another order, plus a quoted field spanning two lines, so rows and lines differ.
    let header = "member_email,Member_ID,pcon_code,notes,pcon_name,display_as,party_text";
    let file = write_csv(
        dir.path(),
        "bad.csv",
        header,
        &[
            r#"alex.baker.mp@parliament.uk,5173,E14001063,"two
lines",Aldershot,Alex Baker,Labour"#
                .into(), // lines 2-3
            "x@parliament.uk,5174,E1400,,Nowhere,Someone,Labour".into(),                      // line 4: bad code
            "y@parliament.uk,abc,E14001064,,Aldridge-Brownhills,Wendy Morton,Conservative".into(), // line 5: bad id
            "connor@,5175,E14001065,,Altrincham and Sale West,Connor Rand,Labour".into(),         // line 6: bad email
            "z@parliament.uk,5176,E14001063,,Aldershot again,Someone Else,Labour".into(),         // line 7: repeat
            "short,row".into(),                                                                   // line 8: too short
            "No email found,5107,E14001066,,Amber Valley,Linsey Farnsworth,Labour".into(),        // line 9: fine, no email
        ],
    );
    let report = import(&app, &file).await.unwrap();
    assert_eq!(report.added, 2, "{report}");
    let lines: Vec<u64> = report.bad_rows.iter().map(|b| b.line).collect();
    assert_eq!(lines, vec![4, 5, 6, 7, 8], "{report}");
    let text = report.to_string();
    assert!(text.contains("line 4: pcon_code `E1400`"), "{text}");
    assert!(text.contains("line 7: constituency E14001063 is already on line 2"), "{text}");
    assert_eq!(seated(&app, "E14001066").await.unwrap().email, None);

    let no_columns = write_csv(dir.path(), "cols.csv", "pcon_code,pcon_name,member_id,display_as", &["E14001063,Aldershot,5173,Alex Baker".into()]);
    let err = format!("{:#}", import(&app, &no_columns).await.unwrap_err());
    assert!(err.contains("party_text, member_email"), "{err}");
    let err = format!("{:#}", import(&app, &dir.path().join("nowhere.csv")).await.unwrap_err());
    assert!(err.contains("could not open") && err.contains("nowhere.csv"), "{err}");
});

// ---------------------------------------------------------------------------------------------
// Sync from the Members API
// ---------------------------------------------------------------------------------------------

on_both_backends!(sync_reads_every_page_and_every_contact_entry, |app: TestApp| async move {
    // Rally knows four constituencies, spelt as postcodes.io spells them; one has a stale MP.
    app.sql(
        "INSERT INTO constituencies (ons_code, name) VALUES ('E14001063', 'Aldershot'), ('W07000112', 'YNYS MÔN'), \
         ('E14001435', 'Queen''s Park and Maida Vale'), ('E14000001', 'Old Seat'); \
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (111, 'E14000001', 'Former Member', 'Labour', 'former@parliament.uk', 1)",
    )
    .await;
    let api = MockServer::start().await;
    let mut first: Vec<Value> = vec![api_member(5173, "Alex Baker", "Labour", "Aldershot")];
    first.extend((0..19).map(|i| api_member(6000 + i, &format!("Member {i}"), "Labour", &format!("Elsewhere {i}"))));
    search_answers(&api, "0", search_page(first, 22, 0)).await;
    let second = vec![api_member(5085, "Llinos Medi", "Plaid Cymru", "Ynys Mon"), api_member(5305, "Georgia Gould", "Labour", "Queens Park & Maida Vale")];
    search_answers(&api, "20", search_page(second, 22, 20)).await;
    // The email is on the second entry only; the first is the preferred one, without an email.
    contacts_are(&api, 5173, vec![contact("Parliamentary office", true, None), contact("Constituency office", false, Some("alex.baker.mp@parliament.uk")), web_address("X (formerly Twitter)", "https://x.com/alex")]).await;
    contacts_are(&api, 5085, vec![web_address("Website", "https://example.org"), contact("Parliamentary office", false, Some("llinos.medi.mp@parliament.uk"))]).await;
    contacts_are(&api, 5305, vec![web_address("X (formerly Twitter)", "https://x.com/georgia")]).await;
    let client = MembersClient::new(&api.uri());

    let report = mps::sync(&app.db(), &client, false).await.unwrap();
    assert_eq!((report.members, report.constituencies, report.added, report.changed, report.vacated, report.vacant), (22, 4, 3, 0, 1, 1), "{report}");
    assert_eq!(report.unmatched.len(), 19, "{report}");
    assert!(report.unmatched.contains(&"Member 0 (Elsewhere 0)".to_string()));
    assert!(report.contact_failures.is_empty());
    assert!(report.to_string().contains("19 MPs sit for constituencies Rally does not know yet"), "{report}");
    let contact_calls = api.received_requests().await.unwrap().iter().filter(|r| r.url.path().ends_with("/Contact")).count();
    assert_eq!(contact_calls, 3, "contacts are fetched only for MPs Rally can place");

    assert_eq!(seated(&app, "E14001063").await.unwrap().email.as_deref(), Some("alex.baker.mp@parliament.uk"));
    assert_eq!(seated(&app, "W07000112").await.unwrap().name, "Llinos Medi");
    let georgia = seated(&app, "E14001435").await.unwrap();
    assert_eq!((georgia.id, georgia.email), (5305, None));
    assert_eq!(seated(&app, "E14000001").await, None, "no current MP sits for the old seat");
    assert!(constituency(&app, "E14000001").await.unwrap().mp_checked_at.is_some());

    let again = mps::sync(&app.db(), &client, false).await.unwrap();
    assert_eq!((again.added, again.changed, again.unchanged, again.vacated), (0, 0, 4, 0), "{again}");

    // One MP's contact details fail (after retries): their stored email survives.
    api.reset().await;
    let mut first: Vec<Value> = vec![api_member(5173, "Alex Baker", "Labour", "Aldershot")];
    first.extend((0..19).map(|i| api_member(6000 + i, &format!("Member {i}"), "Labour", &format!("Elsewhere {i}"))));
    search_answers(&api, "0", search_page(first, 22, 0)).await;
    search_answers(&api, "20", search_page(vec![api_member(5085, "Llinos Medi", "Plaid Cymru", "Ynys Mon")], 22, 20)).await;
    Mock::given(method("GET")).and(path("/api/Members/5173/Contact")).respond_with(ResponseTemplate::new(503)).mount(&api).await;
    contacts_are(&api, 5085, vec![contact("Parliamentary office", true, Some("llinos.medi.mp@parliament.uk"))]).await;
    let third = mps::sync(&app.db(), &client, false).await.unwrap();
    assert_eq!(third.contact_failures, vec!["Alex Baker".to_string()], "{third}");
    assert_eq!((third.changed, third.vacated), (0, 1), "{third}");
    assert_eq!(seated(&app, "E14001063").await.unwrap().email.as_deref(), Some("alex.baker.mp@parliament.uk"));
    assert_eq!(seated(&app, "E14001435").await, None, "Queen's Park is no longer listed");
});

on_both_backends!(sync_changes_nothing_when_the_members_api_is_down, |app: TestApp| async move {
    app.sql(
        "INSERT INTO constituencies (ons_code, name) VALUES ('E14001063', 'Aldershot'); \
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (5173, 'E14001063', 'Alex Baker', 'Labour', NULL, 1)",
    )
    .await;
    let api = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(500)).mount(&api).await;
    let err = format!("{:#}", mps::sync(&app.db(), &MembersClient::new(&api.uri()), false).await.unwrap_err());
    assert!(err.contains("could not list current MPs"), "{err}");
    // An empty list is refused too, rather than vacating every seat.
    api.reset().await;
    search_answers(&api, "0", search_page(vec![], 0, 0)).await;
    let err = format!("{:#}", mps::sync(&app.db(), &MembersClient::new(&api.uri()), false).await.unwrap_err());
    assert!(err.contains("listed no current MPs"), "{err}");
    assert_eq!(seated(&app, "E14001063").await.unwrap().id, 5173);
    assert_eq!(constituency(&app, "E14001063").await.unwrap().mp_checked_at, None);
});

// ---------------------------------------------------------------------------------------------
// On-demand lookup
// ---------------------------------------------------------------------------------------------

on_both_backends!(an_unchecked_constituency_is_looked_up_once_and_cached, |app: TestApp| async move {
    app.sql("INSERT INTO constituencies (ons_code, name) VALUES ('W07000112', 'Ynys Môn')").await;
    let api = MockServer::start().await;
    // `Location` matches loosely: the neighbouring seat comes back too and must be ignored.
    let found = vec![api_member(4000, "Someone Else", "Labour", "Bangor Aberconwy"), api_member(5085, "Llinos Medi", "Plaid Cymru", "Ynys Môn")];
    Mock::given(method("GET"))
        .and(path("/api/Members/Search"))
        .and(query_param("Location", "Ynys Môn"))
        .and(query_param("IsCurrentMember", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(search_page(found, 2, 0)))
        .expect(1)
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/Members/5085/Contact"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            contact("Constituency office", false, None), contact("Parliamentary office", true, Some("llinos.medi.mp@parliament.uk"))], "links": []})))
        .expect(1)
        .mount(&api)
        .await;
    let client = MembersClient::new(&api.uri());
    let expected = MpStatus::Known(Mp {
        member_id: Some(5085),
        name: "Llinos Medi".into(),
        party: Some("Plaid Cymru".into()),
        email: Some("llinos.medi.mp@parliament.uk".into()),
        contact_url: Some("https://members.parliament.uk/member/5085/contact".into()),
    });
    assert_eq!(mps::mp_for_with(&app.db(), &client, "W07000112").await.unwrap(), expected);
    assert_eq!(mps::mp_for_with(&app.db(), &client, "W07000112").await.unwrap(), expected, "the second answer comes from the database");
    assert!(constituency(&app, "W07000112").await.unwrap().mp_checked_at.is_some());
    assert_eq!(mps::mp_for_with(&app.db(), &client, "E14000000").await.unwrap(), MpStatus::Unknown);
    api.verify().await;
});

on_both_backends!(vacant_seats_are_remembered_and_an_outage_says_lookup_unavailable, |app: TestApp| async move {
    app.sql("INSERT INTO constituencies (ons_code, name) VALUES ('E14009999', 'Vacant Town'), ('E14009998', 'Never Checked')").await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/Members/Search"))
        .and(query_param("Location", "Vacant Town"))
        .respond_with(ResponseTemplate::new(200).set_body_json(search_page(vec![], 0, 0)))
        .expect(1)
        .mount(&api)
        .await;
    let client = MembersClient::new(&api.uri());
    assert_eq!(mps::mp_for_with(&app.db(), &client, "E14009999").await.unwrap(), MpStatus::Vacant);
    assert_eq!(mps::mp_for_with(&app.db(), &client, "E14009999").await.unwrap(), MpStatus::Vacant, "remembered for a day");
    api.verify().await;

    // The Members API goes down.
    api.reset().await;
    Mock::given(method("GET")).and(path_regex("^/api/")).respond_with(ResponseTemplate::new(503)).mount(&api).await;
    let err = mps::mp_for_with(&app.db(), &client, "E14009998").await.unwrap_err();
    assert_eq!(err.code(), "lookup_unavailable");
    assert!(err.message().contains("try again"), "{}", err.message());
    // A seat checked two days ago is due a new check, but its old answer beats none.
    app.sql("UPDATE constituencies SET mp_checked_at = mp_checked_at - 172800000 WHERE ons_code = 'E14009999'").await;
    assert_eq!(mps::mp_for_with(&app.db(), &client, "E14009999").await.unwrap(), MpStatus::Vacant);
});

// ---------------------------------------------------------------------------------------------
// The commands as an operator runs them
// ---------------------------------------------------------------------------------------------

#[test]
fn mps_commands_run_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let rally = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rally"))
            .args(args)
            .current_dir(dir.path())
            .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("mps.db").display()))
            .env("RALLY_MEMBERS_API_URL", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    let file = write_csv(dir.path(), "mp_lookup.csv", HEADER, &first_file());
    let file = file.to_str().unwrap();
    let out = rally(&["mps", "import", file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Imported 4 constituencies (4 new, 0 renamed): 3 MPs added"), "{stdout}");
    let out = rally(&["mps", "import", file]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 MPs added, 0 changed, 4 unchanged"));

    let mut rows = first_file();
    rows.insert(1, row("Broken", "E99", "1", "A", "B", ""));
    let broken = write_csv(dir.path(), "broken.csv", HEADER, &rows);
    let out = rally(&["mps", "import", broken.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("line 3: pcon_code `E99`"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 row of the file could not be imported"));

    let out = rally(&["mps", "import", "missing.csv"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not open missing.csv"));

    let out = rally(&["mps", "sync"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not list current MPs from the Members API at http://127.0.0.1:9"));
}
