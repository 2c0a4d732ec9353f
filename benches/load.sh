#!/usr/bin/env bash
# Load benchmark: a release build of Rally on loopback, driven by wrk, on this machine's cores
# (shared with wrk itself). Prints each row of issue 5's table with its ratio to the same run's
# GET /healthz and appends the figures to target/bench/results.jsonl. A benchmark, not a test:
# it reports, it does not fail on a time.
#
#   benches/load.sh                      # SQLite in a temporary folder, 10 s per row
#   BENCH_RUNS=3 benches/load.sh         # three runs in a row
#   BENCH_POSTGRES=postgres://root@127.0.0.1:5432/postgres benches/load.sh   # a fresh PostgreSQL database
#
# Needs wrk (Debian: apt-get install wrk), curl and perl.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${BENCH_DURATION:-10s}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
THREADS="${BENCH_THREADS:-2}"
RUNS="${BENCH_RUNS:-1}"
SLUG=legal-advocacy
OUT=target/bench/results.jsonl

for tool in wrk curl perl; do
  command -v "$tool" >/dev/null || { echo "benches/load.sh needs $tool (Debian: apt-get install $tool)" >&2; exit 2; }
done

cargo build --release --quiet
mkdir -p target/bench

free_port() { perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen=>1,LocalAddr=>"127.0.0.1:0")->sockport'; }

# Runs wrk and prints "rps p99_ms errors".
load() {
  local url="$1" script="$2"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$script" "$url" >/dev/null 2>&1 || true # warm-up
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$script" "$url" 2>/dev/null |
    awk '/^rps /{r=$2} /^p99_ms /{p=$2} /^errors /{e=$2} END{print r, p, e}'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b>0)?a/b:0}'; }
verdict() { awk -v v="$1" -v t="$2" -v op="${3:-ge}" 'BEGIN{ok=(op=="ge")?(v>=t):(v<=t); print ok?"met":"MISSED"}'; }

# Signs one new address, confirms it from its email, and prints how many ms passed between the
# confirmation's answer and the count on GET /api/campaigns/{slug} including it.
freshness() {
  local base="$1" mail="$2" email="fresh-$RANDOM$RANDOM@bench.example"
  local before token start now count
  before=$(curl -s "$base/api/campaigns/$SLUG" | perl -ne 'print $1 if /"signature_count":(\d+)/')
  curl -s -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"name\":\"Fresh Count\",\"email\":\"$email\",\"postcode\":\"SW1A 1AA\",\"consent\":true}" \
    "$base/api/campaigns/$SLUG/signatures"
  for _ in $(seq 1 200); do
    token=$(grep -l -r "$email" "$mail" 2>/dev/null | head -1 | xargs -r perl -0ne 's/=\r?\n//g; print $1 if m{/confirm/([A-Za-z0-9_-]+)}') || true
    [ -n "$token" ] && break
    sleep 0.05
  done
  [ -n "$token" ] || { echo "none"; return; }
  curl -s -o /dev/null -H 'Content-Type: application/json' -d "{\"token\":\"$token\"}" "$base/api/confirmations"
  start=$(date +%s%N)
  for _ in $(seq 1 500); do
    count=$(curl -s "$base/api/campaigns/$SLUG" | perl -ne 'print $1 if /"signature_count":(\d+)/')
    if [ "$count" -gt "$before" ]; then
      now=$(date +%s%N); echo $(( (now - start) / 1000000 )); return
    fi
    sleep 0.01
  done
  echo "none"
}

run_once() {
  local n="$1" dir port base pid db_url pg_db=""
  dir=$(mktemp -d)
  port=$(free_port)
  base="http://127.0.0.1:$port"
  if [ -n "${BENCH_POSTGRES:-}" ]; then
    pg_db="rally_bench_$$_$n"
    psql "$BENCH_POSTGRES" -qc "CREATE DATABASE $pg_db" >/dev/null
    db_url="${BENCH_POSTGRES%/*}/$pg_db"
  else
    db_url="sqlite://$dir/rally.db"
  fi
  # Postcode and MP services point nowhere: the run measures Rally, and never calls the real ones.
  DATABASE_URL="$db_url" RALLY_LISTEN="127.0.0.1:$port" RALLY_PUBLIC_URL="$base" RALLY_MAIL_DIR="$dir/mail" \
  RALLY_POSTCODES_URL=http://127.0.0.1:9 RALLY_MEMBERS_API_URL=http://127.0.0.1:9 RALLY_RATE_LIMITS=off \
  RUST_LOG=warn target/release/rally serve >"$dir/rally.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.1; done

  read -r h_rps h_p99 h_err < <(load "$base/healthz" benches/report.lua)
  read -r a_rps a_p99 a_err < <(load "$base/api/campaigns/$SLUG" benches/report.lua)
  read -r p_rps p_p99 p_err < <(load "$base/campaigns/$SLUG" benches/report.lua)
  fresh=$(freshness "$base" "$dir/mail")
  read -r s_rps s_p99 s_err < <(load "$base/api/campaigns/$SLUG/signatures" benches/sign.lua)
  peak_kib=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  [ -n "$pg_db" ] && psql "$BENCH_POSTGRES" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null
  rm -rf "$dir"

  local peak_mib=$(( peak_kib / 1024 )) backend=${pg_db:+postgres}
  backend=${backend:-sqlite}
  echo
  echo "Run $n of $RUNS ($backend, $(nproc) cores shared with wrk, $CONNECTIONS connections, $DURATION per row)"
  printf '%-44s %10s %9s %7s  %s\n' "row" "per sec" "p99 ms" "ratio" "target"
  printf '%-44s %10s %9s %7s  %s\n' "GET /healthz (baseline)" "$h_rps" "$h_p99" "1.00" ""
  printf '%-44s %10s %9s %7s  %s\n' "POST /api/campaigns/{slug}/signatures" "$s_rps" "$s_p99" "$(ratio "$s_rps" "$h_rps")" \
    "≥15000/s $(verdict "$s_rps" 15000), p99≤25 $(verdict "$s_p99" 25 le), ≥0.20× $(verdict "$(ratio "$s_rps" "$h_rps")" 0.20)"
  printf '%-44s %10s %9s %7s  %s\n' "GET /api/campaigns/{slug}" "$a_rps" "$a_p99" "$(ratio "$a_rps" "$h_rps")" "≥0.50× $(verdict "$(ratio "$a_rps" "$h_rps")" 0.50)"
  printf '%-44s %10s %9s %7s  %s\n' "GET /campaigns/{slug}" "$p_rps" "$p_p99" "$(ratio "$p_rps" "$h_rps")" "≥0.35× $(verdict "$(ratio "$p_rps" "$h_rps")" 0.35)"
  printf '%-44s %10s %9s %7s  %s\n' "count freshness (ms after confirming)" "$fresh" "" "" "≤1000 $( [ "$fresh" != none ] && verdict "$fresh" 1000 le || echo MISSED)"
  printf '%-44s %10s %9s %7s  %s\n' "peak memory (MiB)" "$peak_mib" "" "" "≤200 $(verdict "$peak_mib" 200 le)"
  printf '%-44s %10s\n' "errors (non-2xx, socket)" "$((h_err + a_err + p_err + s_err))"
  printf '{"when":"%s","backend":"%s","cores":%s,"connections":%s,"duration":"%s","healthz_rps":%s,"sign_rps":%s,"sign_p99_ms":%s,"api_rps":%s,"page_rps":%s,"freshness_ms":"%s","peak_mib":%s,"errors":%s}\n' \
    "$(date -u +%FT%TZ)" "$backend" "$(nproc)" "$CONNECTIONS" "$DURATION" "$h_rps" "$s_rps" "$s_p99" "$a_rps" "$p_rps" "$fresh" "$peak_mib" \
    "$((h_err + a_err + p_err + s_err))" >>"$OUT"
}

for n in $(seq 1 "$RUNS"); do run_once "$n"; done
echo
echo "Figures appended to $OUT"
