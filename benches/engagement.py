#!/usr/bin/env python3
"""A seeded run of the engagement loop: an update to a few thousand signers, and reply rates.

Usage: cargo build --release && python3 benches/engagement.py target/release/rally /tmp/rally-demo
(SIGNERS=… and LETTERS=… change the sizes; the work folder must be new.)

Runs `rally` on SQLite with mail to files, as a new user would. It seeds signers and delivered
letters straight into the database, then drives the staff pages and the answer links over HTTP,
and prints the update's delivery figures and the dashboard's reply rates per party. Rate limits
are off for it, as for any trusted caller.
"""
import email, email.policy, glob, os, random, re, sqlite3, subprocess, sys, time
import requests

binary, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
db = os.path.join(work, "rally.db")
mail = os.path.join(work, "mail")
port = int(os.environ.get("PORT", "18080"))
base = f"http://127.0.0.1:{port}"
env = dict(os.environ, DATABASE_URL=f"sqlite://{db}", RALLY_MAIL_DIR=mail, RALLY_LISTEN=f"127.0.0.1:{port}",
           RALLY_PUBLIC_URL=base, RALLY_POSTCODES_URL="http://127.0.0.1:9", RALLY_MEMBERS_API_URL="http://127.0.0.1:9",
           RALLY_STAFF_PASSWORD="correct horse battery staple", RALLY_LOG_FORMAT="json", RALLY_RATE_LIMITS="off")
SIGNERS = int(os.environ.get("SIGNERS", "3000"))
LETTERS = int(os.environ.get("LETTERS", "400"))

subprocess.run([binary, "migrate"], env=env, check=True, capture_output=True)
subprocess.run([binary, "staff", "add", "--email", "lead@campaign.example", "--name", "Lead"], env=env, check=True, capture_output=True)

now = int(time.time() * 1000)
c = sqlite3.connect(db)
# `serve` loads the shipped campaign into the empty database.
server = subprocess.Popen([binary, "serve"], env=env, stdout=open(os.path.join(work, "rally.log"), "w"), stderr=subprocess.STDOUT)
import atexit
atexit.register(server.terminate)
for _ in range(100):
    try:
        if requests.get(base + "/healthz", timeout=1).status_code == 200:
            break
    except requests.RequestException:
        pass
    time.sleep(0.2)
cid = c.execute("SELECT id FROM campaigns WHERE slug = 'legal-advocacy'").fetchone()[0]

# Signers: 3 in 4 asked for updates, 1 in 20 never confirmed.
rows = []
for i in range(SIGNERS):
    confirmed = i % 20 != 0
    rows.append((cid, f"Signer {i}", f"signer{i}@example.com", f"signer{i}@example.com", "SW1A 1AA", i % 4 != 0,
                 "confirmed" if confirmed else "pending", now, now if confirmed else None))
c.executemany("INSERT INTO signatures (campaign_id, name, email, email_key, postcode, updates_opt_in, show_name, state, created_at, confirmed_at) VALUES (?,?,?,?,?,?,0,?,?,?)", rows)
eligible = sum(1 for r in rows if r[5] and r[6] == "confirmed")

# Delivered letters to twelve MPs of four parties, fifteen days ago (so the questionnaire is due).
parties = ["Labour", "Conservative", "Liberal Democrat", "Green Party"]
seats = []
for s in range(12):
    ons = f"E140099{s:02d}"
    c.execute("INSERT OR IGNORE INTO constituencies (ons_code, name) VALUES (?, ?)", (ons, f"Seat {s + 1}"))
    c.execute("INSERT OR REPLACE INTO members (id, ons_code, name, party, email, updated_at) VALUES (?,?,?,?,?,?)",
              (90000 + s, ons, f"MP {s + 1}", parties[s % 4], f"mp{s + 1}@parliament.example", now))
    seats.append((ons, f"MP {s + 1}", f"mp{s + 1}@parliament.example", parties[s % 4]))
sent_at = now - 15 * 86400000
for i in range(LETTERS):
    ons, mp, mp_email, _ = seats[i % 12]
    c.execute("""INSERT INTO letters (campaign_id, target_key, target_name, target_email, ons_code, writer_name, writer_email,
                 writer_email_key, address_line1, town, postcode, subject, body, state, created_at, confirmed_at, sent_at)
                 VALUES (?, 'mp', ?, ?, ?, ?, ?, ?, '1 High Street', 'Town', 'SW1A 1AA', 'A letter', 'Dear MP', 'sent', ?, ?, ?)""",
              (cid, mp, mp_email, ons, f"Writer {i}", f"writer{i}@example.com", f"writer{i}@example.com", int(time.time() * 1000), sent_at, sent_at))
c.commit()
print(f"seeded {SIGNERS} signers ({eligible} confirmed and opted in) and {LETTERS} letters to 12 MPs delivered 15 days ago")

s = requests.Session()
def csrf(path):
    m = re.search(r'name="csrf_token" value="([^"]+)"', s.get(base + path).text)
    return m.group(1)
r = s.post(base + "/admin/login", data={"email": "lead@campaign.example", "password": "correct horse battery staple", "csrf_token": csrf("/admin/login")}, allow_redirects=False)
assert r.status_code == 303, r.status_code
lst = "/admin/campaigns/legal-advocacy/updates"
r = s.post(base + lst, data={"subject": "Thank you: the Justice Committee is listening", "body_md": "## Where we are\n\nThe committee will **take evidence** in March.\n\n* Thank you for signing.\n* Please tell a friend.", "csrf_token": csrf(lst)}, allow_redirects=False)
page = r.headers["location"].split("?")[0]
html = s.get(base + page).text
shown = int(re.search(r'data-stat="eligible">([0-9,]+)<', html).group(1).replace(",", ""))
print(f"the update page says it would reach {shown:,} people (expected {eligible:,})")
t0 = time.time()
r = s.post(base + page + "/send", data={"confirm": "yes", "csrf_token": csrf(page)}, allow_redirects=False)
assert r.status_code == 303, r.status_code
def stat(html, name):
    return int(re.search(rf'data-stat="{name}">([0-9,]+)<', html).group(1).replace(",", ""))
while True:
    html = s.get(base + page).text
    if stat(html, "sent") + stat(html, "failed") >= stat(html, "recipients") and stat(html, "waiting") == 0 and "Still sending" not in html:
        break
    time.sleep(0.5)
elapsed = time.time() - t0
files = glob.glob(os.path.join(mail, "*.eml"))
got = {}
for f in files:
    msg = email.message_from_bytes(open(f, "rb").read(), policy=email.policy.default)
    if msg["Subject"] == "Thank you: the Justice Committee is listening":
        got[str(msg["To"])] = got.get(str(msg["To"]), 0) + 1
        lu = msg["List-Unsubscribe"]
print(f"update: recipients {stat(html, 'recipients'):,}, sent {stat(html, 'sent'):,}, failed {stat(html, 'failed'):,}; "
      f"{len(got):,} distinct mailboxes got it, most copies to one mailbox {max(got.values())}; "
      f"{elapsed:.1f} s from Send to the last email ({stat(html, 'sent') / elapsed:.0f} a second); List-Unsubscribe {lu}")

# The questionnaire: the worker's next round (at most a minute) asks about the 15-day-old letters.
def asks():
    n = 0
    for f in glob.glob(os.path.join(mail, "*.eml")):
        if b"Subject: Did MP" in open(f, "rb").read(4096):
            n += 1
    return n
t0 = time.time()
while asks() < LETTERS and time.time() - t0 < 120:
    time.sleep(1)
# Answer 3 in 4, differently by party.
weights = {"Labour": [5, 2, 2, 1], "Conservative": [2, 2, 3, 3], "Liberal Democrat": [6, 1, 2, 1], "Green Party": [3, 1, 1, 5]}
answers = ["replied", "not_addressed", "acknowledgement", "no_reply"]
party_of = {mp_email: party for _, _, mp_email, party in seats}
asked = answered = 0
for f in glob.glob(os.path.join(mail, "*.eml")):
    msg = email.message_from_bytes(open(f, "rb").read(), policy=email.policy.default)
    if not str(msg["Subject"]).startswith("Did MP"):
        continue
    asked += 1
    text = msg.get_body(("plain",)).get_content()
    n = int(re.search(r"writer(\d+)@", str(msg["To"])).group(1))
    party = seats[n % 12][3]
    if random.random() < 0.25:
        continue
    answer = random.choices(answers, weights[party])[0]
    link = re.search(rf"{re.escape(base)}(/replies/[A-Za-z0-9_-]+)\?answer={answer}", text).group(1)
    assert s.get(base + link + f"?answer={answer}").status_code == 200
    r = requests.post(base + link, data={"answer": answer})
    assert r.status_code == 200, r.status_code
    answered += 1
print(f"questionnaire: {asked} asked, {answered} answered through the links")
html = s.get(base + "/admin/campaigns/legal-advocacy/dashboard").text
table = re.search(r'<table id="replies-by-party">.*?</table>', html, re.S).group(0)
print("By party (from the dashboard):")
for row in re.findall(r"<tr data-party=.*?</tr>", table, re.S):
    cells = [re.sub(r"<[^>]+>", "", x).strip() for x in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
    print("  " + " | ".join(cells))
server.terminate()
server.wait()
