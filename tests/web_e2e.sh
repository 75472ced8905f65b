#!/usr/bin/env bash
# The dashboard end to end in Chromium: the daemon on the demo data with
# logins (an admin and a viewer from clustermonctl passwd), then
# tests/web/web_e2e.mjs opens the pages and checks the figures against
# clustermonctl report --json, an alert caused meanwhile reaching the open
# page within 2 s, the English switch, a clean console and a viewer refused a
# silence; it leaves screenshots in $WEB_SHOTS (default build/screenshots;
# WEB_SHOTS=daemon/web/screenshots refreshes the ones README shows).
# playwright-core comes from build/npm/tests (make e2e installs it from
# tests/web/package-lock.json): nothing is fetched here.
SUITE=web_e2e
source "$(dirname "$0")/lib.sh"

NPM_DIR=$ROOT/build/npm/tests
if [ ! -d "$NPM_DIR/node_modules/playwright-core" ] || ! command -v chromium > /dev/null ||
    ! command -v node > /dev/null; then
    no "playwright-core (build/npm/tests), node and chromium are there: run make e2e (it installs them)"
    finish
    exit 1
fi

ADMIN="web-admin:$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
VIEWER="web-viewer:$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
FIRMUSER="ee007-finance:$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
{
    echo "# made by tests/web_e2e.sh"
    printf '%s\n' "${ADMIN#*:}" | "$BIN/clustermonctl" passwd "${ADMIN%%:*}" admin
    printf '%s\n' "${VIEWER#*:}" | "$BIN/clustermonctl" passwd "${VIEWER%%:*}" viewer
    printf '%s\n' "${FIRMUSER#*:}" | "$BIN/clustermonctl" passwd "${FIRMUSER%%:*}" firm:ee-007
} > "$TMP/http_users"
check "clustermonctl passwd makes three http_users entries (one a firm's login)" \
    test "$(grep -c ':\$argon2id\$' "$TMP/http_users")" = 3
# a firm login for a firm the registry does not have stops the daemon, naming the line
{ head -3 "$TMP/http_users"; sed -n 4p "$TMP/http_users" | sed 's/:firm:ee-007:/:firm:zz-404:/'; } > "$TMP/bad_users"
make_config "$TMP/bad.conf" "http = 127.0.0.1:$(free_port)" "http_users = $TMP/bad_users"
sed -i "s|^state_dir = .*|state_dir = $TMP/bad-state|" "$TMP/bad.conf"
timeout 20 "$BIN/clustermond" -n -c "$TMP/bad.conf" > "$TMP/bad-n.log" 2>&1
check "clustermond -n: a firm login for no member is refused, naming file:line (exit $?)" \
    grep -q "bad_users:4: role: firm: 'zz-404' is not a member in the registry" "$TMP/bad-n.log"
timeout 20 "$BIN/clustermond" -c "$TMP/bad.conf" > "$TMP/bad.log" 2>&1
check "... and the daemon does not start with it (exit $?)" \
    grep -q "bad_users:4: role: firm: 'zz-404' is not a member in the registry" "$TMP/bad.log"

start() {
    PORT=$(free_port)
    # fsync = always: an upload's answer then waits for its WAL record, as an agent's ack does
    make_config "$TMP/c.conf" "http = 127.0.0.1:$PORT" "http_users = $TMP/http_users" fsync=always
    start_daemon "$TMP/c.conf"
}
if ! retry_bind "$TMP/daemon.log" start; then
    no "the daemon starts with the dashboard on"
    tail -5 "$TMP/daemon.log"
    finish
    exit 1
fi
URL=http://127.0.0.1:$PORT

AGENT=(timeout 60 "$BIN/clustermon-agent" -s "$TMP/spool" -e "$INGEST" -t 5000)
check "agent sends the demo data" sh -c "${AGENT[*]} -a w1 daemon/demo/2021.csv && ${AGENT[*]} -a w2 \
daemon/demo/2022.csv && ${AGENT[*]} -a w3 daemon/demo/readings.csv" > /dev/null 2>&1
YEAR=2022
ctl report --json --year $YEAR > "$TMP/report.json"
check "clustermonctl report --json --year $YEAR" jqe '.clusters | length == 2' "$TMP/report.json"
# the cluster page's trend and drag firms must be these replies, figure for figure
ctl series --metric revenue --cluster energy-env --from $YEAR --to $YEAR --yoy --json > "$TMP/series.json"
THROUGH=$(jq '[.points | to_entries[] | select(.value.value != null) | .key + 1] | max' "$TMP/series.json")
ctl ranking --metric revenue --cluster energy-env --from $YEAR-01 --to "$YEAR-$(printf %02d "$THROUGH")" \
    --json > "$TMP/ranking.json"
check "clustermonctl series and ranking --json for energy-env (through month $THROUGH)" \
    jqe '.points | length == 12' "$TMP/series.json"

check "/ without credentials: 401 with a Basic challenge" sh -c \
    "curl -s -D - -o /dev/null $URL/ | grep -qi '^WWW-Authenticate: Basic'"
check "/healthz needs no login" sh -c "curl -sf $URL/healthz | grep -qx ok"
check "/ serves the dashboard, no CDN anywhere in it" sh -c \
    "curl -sf -u '$VIEWER' $URL/ | grep -q '/echarts.min.js' && ! curl -sf -u '$VIEWER' $URL/ | grep -qi 'https\\?://'"
curl -sf -u "$VIEWER" "$URL/echarts.min.js" -o "$TMP/echarts.js"
check "the chart library is served by the daemon (the npm package's file)" \
    cmp -s "$TMP/echarts.js" "$ROOT/build/npm/web/node_modules/echarts/dist/echarts.common.min.js"

# The alert the browser must see arrive: cod over the limit twice at ee-007
# (rule cod-limit: above 50 for 2 samples), stamped now.
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
printf 'enterprise,metric,value,timestamp\nee-007,cod,88.5,%s\nee-007,cod,91.2,%s\n' \
    "$now" "$(date -u -d '+1 second' +%Y-%m-%dT%H:%M:%SZ)" > "$TMP/cod.csv"
ALERT_CMD=$(jq -cn --args '$ARGS.positional' -- "${AGENT[@]}" -a w4 "$TMP/cod.csv")

ACK_NOTE="web e2e: 5月设备检修 (plant maintenance in May)"
SHOTS=${WEB_SHOTS:-$ROOT/build/screenshots}

# The firm's upload: a GBK CSV with Chinese headers in another column order,
# one bad row (negative revenue, line 3), then fixed; and a file of another
# firm's rows. 2023 has no figures in the demo, so the totals for it change
# by exactly the file's sum.
up() { printf '期间,数值,企业,指标\r\n2023-01,1234567.89,ee-007,revenue\r\n2023-02,%s,ee-007,revenue\r\n2023-03,3456789.10,ee-007,revenue\r\n' "$1" |
    iconv -f utf-8 -t gbk > "$2"; }
up -2345678.01 "$TMP/upload-bad.csv"
up 2345678.01 "$TMP/upload-good.csv"
UPLOAD_SUM=7037035.000
printf '企业,指标,数值,期间\r\nee-008,revenue,99,2023-01\r\n' | iconv -f utf-8 -t gbk > "$TMP/upload-other.csv"
check "the upload files are GBK (not UTF-8)" sh -c "! iconv -f utf-8 -t utf-8 $TMP/upload-good.csv > /dev/null 2>&1"
sum_of() { ctl series --metric revenue "$@" --from 2023 --to 2023 --json | jq -r '.sum'; }
before_firm=$(sum_of --firm ee-007)
before_cluster=$(sum_of --cluster energy-env)
dup_before=$(status_field batches_duplicate)
# the form: the firm types last month's profit and revenue (the page's
# default period, in the daemon's time zone), first with the revenue negative
FORM_PERIOD=$(TZ=Asia/Shanghai date -d "$(TZ=Asia/Shanghai date +%Y-%m-15) -1 month" +%Y-%m)
FORM_REVENUE=1234567.80
FORM_PROFIT=-4321.09
totals() { ctl totals --metric "$1" --period "$FORM_PERIOD" --json |
    jq -r '.clusters[] | select(.id == "energy-env") | .total // "0" | tonumber | . * 1000 | round'; }
form_rev_before=$(totals revenue)
form_prof_before=$(totals profit)
form_firm_before=$(ctl series --metric revenue --firm ee-007 --from "$FORM_PERIOD" --to "$FORM_PERIOD" --json | jq -r .sum)
out=$(cd "$ROOT" && FORM_PERIOD=$FORM_PERIOD FORM_REVENUE=$FORM_REVENUE FORM_PROFIT=$FORM_PROFIT URL=$URL REPORT=$TMP/report.json YEAR=$YEAR ADMIN=$ADMIN VIEWER=$VIEWER \
    SERIES=$TMP/series.json RANKING=$TMP/ranking.json THROUGH=$THROUGH ACK_NOTE="$ACK_NOTE" \
    FIRMUSER=$FIRMUSER UPLOAD_DIR=$TMP UPLOAD_SUM=$UPLOAD_SUM \
    ALERT_CMD=$ALERT_CMD SHOTS=$SHOTS NPM_DIR=$NPM_DIR \
    timeout 180 node tests/web/web_e2e.mjs 2>&1)
rc=$?
echo "$out" | grep -v '^web_e2e.mjs:'
pass=$((pass + $(echo "$out" | grep -c '^ok   - ')))
fail=$((fail + $(echo "$out" | grep -c '^FAIL - ')))
[ $rc = 0 ] || [ "$(echo "$out" | grep -c '^FAIL - ')" != 0 ] || no "web_e2e.mjs exited $rc"
ctl alerts --json > "$TMP/alerts.json"
check "clustermonctl alerts --json shows the page's ack: the note and the admin's name" jqe \
    --arg note "$ACK_NOTE" --arg who "${ADMIN%%:*}" \
    '[.acks[] | select(.alert_id == "cod-limit:ee-007" and .note == $note and .who == $who)] | length == 1' \
    "$TMP/alerts.json"
check "clustermonctl history has the ack too" sh -c "$BIN/clustermonctl -e $CONTROL -t 5000 history --firm ee-007 \
    --json | jq -e --arg who '${ADMIN%%:*}' '[.entries[] | select(.kind == \"ack\" and .who == \$who)] | length == 1' > /dev/null"
after_firm=$(sum_of --firm ee-007)
after_cluster=$(sum_of --cluster energy-env)
check "the upload changed ee-007's 2023 revenue by exactly the file's sum ($before_firm -> $after_firm)" \
    test "$(jq -n --arg a "$after_firm" --arg b "$before_firm" '($a | tonumber) - ($b | tonumber) | . * 1000 | round')" = 7037035000
check "... and energy-env's by the same ($before_cluster -> $after_cluster): the double confirm counted once" \
    test "$(jq -n --arg a "$after_cluster" --arg b "$before_cluster" '($a | tonumber) - ($b | tonumber) | . * 1000 | round')" = 7037035000
check "the second confirm was answered as a duplicate by the sequence discipline" \
    test "$(status_field batches_duplicate)" -gt "$dup_before"
check "another firm's row was not applied (ee-008 has no 2023 revenue)" \
    test "$(sum_of --firm ee-008)" = 0.000
form_rev_after=$(totals revenue)
form_prof_after=$(totals profit)
check "clustermonctl totals: energy-env's $FORM_PERIOD revenue rose by exactly the typed $FORM_REVENUE, once \
(milli $form_rev_before -> $form_rev_after)" test $((form_rev_after - form_rev_before)) = 1234567800
check "... and its profit by exactly the typed $FORM_PROFIT (milli $form_prof_before -> $form_prof_after)" \
    test $((form_prof_after - form_prof_before)) = -4321090
form_firm_after=$(ctl series --metric revenue --firm ee-007 --from "$FORM_PERIOD" --to "$FORM_PERIOD" --json | jq -r .sum)
check "clustermonctl series: ee-007's $FORM_PERIOD revenue is the typed figure ($form_firm_before -> $form_firm_after)" \
    test "$(jq -n --arg a "$form_firm_after" --arg b "$form_firm_before" '($a | tonumber) - ($b | tonumber) | . * 1000 | round')" = 1234567800
# An .xlsx made by openpyxl, uploaded by the firm's login without a browser:
# its own row goes in, ee-008's is refused on its row.
/usr/bin/python3 - "$TMP/upload.xlsx" << 'PY'
import sys, datetime, openpyxl
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "报表"
ws.append(["企业代码", "指标", "金额", "年月"])
for firm, v in [("ee-007", 1000.25), ("ee-008", 5)]:
    ws.append([firm, "revenue", v, datetime.date(2023, 4, 1)])
    ws.cell(row=ws.max_row, column=4).number_format = "yyyy-mm"
wb.save(sys.argv[1])
PY
upload() { curl -s -u "$FIRMUSER" -H 'Content-Type: application/octet-stream' --data-binary "@$TMP/upload.xlsx" \
    "$URL/api/v1/upload/$1"; }
check "an upload without credentials is refused (401), its bytes not kept" test "$(head -c 300000 /dev/zero |
    curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/octet-stream' --data-binary @- \
    "$URL/api/v1/upload/check?name=big.csv")" = 401
upload 'check?name=upload.xlsx' > "$TMP/xlsx-check.json"
check "an .xlsx upload is checked: ee-008's row refused on its row (upload.xlsx:3, as clustermon-agent --check names it)" jqe \
    '.problem_count == 1 and (.problems[0].reason | startswith("upload.xlsx:3: ")) and .problems[0].status == "forbidden"' \
    "$TMP/xlsx-check.json"
upload "apply?name=upload.xlsx&seq=$(jq .seq "$TMP/xlsx-check.json")" > "$TMP/xlsx-apply.json"
check "... and applied: its own row in (1000.25 for 2023-04), ee-008's not" sh -c \
    "jq -e '.accepted == 1' $TMP/xlsx-apply.json > /dev/null && test \"\$($BIN/clustermonctl -e $CONTROL series \
    --metric revenue --firm ee-007 --from 2023-04 --to 2023-04 --json | jq -r .sum)\" = 1000.250"
upload "apply?name=upload.xlsx&seq=$(jq .seq "$TMP/xlsx-check.json")" > "$TMP/xlsx-again.json"
check "... a resend of it is already applied" jqe '.already_applied == true' "$TMP/xlsx-again.json"
upload "apply?name=upload.xlsx&seq=99" > "$TMP/xlsx-stale.json"
check "... a seq never handed out is refused (check again)" jqe '.error | test("never handed out")' "$TMP/xlsx-stale.json"

check "eight screenshots (PNG) in $SHOTS" sh -c "for f in overview cluster firm alerts history upload upload-form overview-en; do \
    file -b $SHOTS/\$f.png 2>/dev/null | grep -q '^PNG' || head -c 4 $SHOTS/\$f.png | grep -q PNG || exit 1; done"
check "/metrics counts the refused logins" sh -c \
    "curl -sf -u '$VIEWER' $URL/metrics | grep -q '^clustermon_http_auth_failures_total [1-9]'"

next_before=$(curl -s -u "$FIRMUSER" "$URL/api/v1/upload/state" | jq .next_seq)
stop_daemon
check "the daemon stopped cleanly" grep -q 'stopped' "$TMP/daemon.log"

# the web stream's seqs are durable: after a restart the login goes on from
# the same next seq, and the figures it uploaded are there
start_daemon "$TMP/c.conf"
check "after a restart the firm login's next upload seq is still $next_before" test \
    "$(curl -s -u "$FIRMUSER" "$URL/api/v1/upload/state" | jq .next_seq)" = "$next_before"
check "... and its uploads are still counted" test "$(sum_of --firm ee-007)" = 7038035.250
stop_daemon
finish
