#!/usr/bin/env bash
# The files offices have, and the agent unattended (issue 14), end to end:
# the real daemon and agent on ipc:// endpoints in a temp dir. Each input
# reports into a period of its own, and each ends with exact totals at the
# daemon (clustermonctl totals):
#   (a) a GBK CSV (made with iconv here) with Chinese headers in another order;
#   (b) a wide table (企业,月份,营业收入,利润总额) through a config's [metrics];
#   (c) an .xlsx made by openpyxl: numbers as numbers, a date cell as a period;
#   (d) an .xls made by xlwt;
#   (e) a drop folder: a file written slowly is not taken before it is done,
#       a file renamed in is, a bad file goes to rejected/ with its reason;
#   (f) --exec --every: a command's output each period, a failing run logged
#       with its exit status and skipped.
#
#   BIN=build bash tests/feed_e2e.sh
SUITE=feed-e2e
source "$(dirname "$0")/lib.sh"

make_config "$TMP/d.conf"
# the daemon's config and registry as a Windows editor saves them: with a BOM
(printf '\xef\xbb\xbf'; cat "$ROOT/daemon/demo/registry.csv") > "$TMP/bom-registry.csv"
# (the BOM right before [daemon], with no comment line first, is what used to fail)
(printf '\xef\xbb\xbf'; sed -e '1,/^\[/{/^\[/!d}' -e "s|^registry = .*|registry = $TMP/bom-registry.csv|" "$TMP/d.conf") > "$TMP/bom.conf"
check "clustermond -n takes a config and a registry with a BOM" "$BIN/clustermond" -n -c "$TMP/bom.conf"
start_daemon "$TMP/d.conf" || { echo "daemon did not start"; cat "$TMP/daemon.log"; exit 1; }
AGENT=("$BIN/clustermon-agent" -e "$INGEST" -s "$TMP/spool" -t 3000 -r 3)
total() { ctl totals --metric "$1" --period "$2" --json | jq '[.clusters[].total | tonumber] | add // 0'; }
is_total() { [ "$(total "$1" "$2")" = "$3" ]; }

# (a) GBK, Chinese headers, another column order, as Excel on Chinese Windows saves it.
# A firm reports a metric once per period (a second figure replaces the first),
# so each input below uses firms of its own within its period.
printf '期间,数值,企业,指标\r\n2024年1月,100.5,ee-001,revenue\r\n2024/01,200,ee-002,revenue\r\n202401,"1,000",ee-003,revenue\r\n' |
    iconv -f UTF-8 -t GBK > "$TMP/gbk.csv"
check "(a) the test file is not UTF-8" sh -c "! iconv -f UTF-8 -t UTF-8 '$TMP/gbk.csv' > /dev/null 2>&1"
check "(a) a GBK CSV with Chinese headers is sent" "${AGENT[@]}" -a a-gbk "$TMP/gbk.csv"
check "(a) totals exact (1300.5)" is_total revenue 2024-01 1300.5
# the same file with --encoding utf-8 is refused with file, line and column
"${AGENT[@]}" -a a-gbk2 --encoding utf-8 "$TMP/gbk.csv" 2> "$TMP/a.err"
check "(a) --encoding utf-8: the file, line and field are named" env LC_ALL=C grep -q "gbk.csv:1: enterprise: .* is not valid UTF-8" "$TMP/a.err"

# (b) a wide table, its metric names mapped in the agent's config (with a BOM)
printf '\xef\xbb\xbf[agent]\nendpoint = %s\nspool = %s\nagent_id = b-wide\n[metrics]\n营业收入 = revenue\n利润总额 = profit\n' \
    "$INGEST" "$TMP/spool" > "$TMP/agent.conf"
printf '企业,月份,营业收入,利润总额\nee-001,2024年2月,1000,-50\nee-002,2024年2月,2000,\nee-003,2024年2月,3000,300\n' > "$TMP/wide.csv"
check "(b) a wide table through -c agent.conf" "$BIN/clustermon-agent" -c "$TMP/agent.conf" "$TMP/wide.csv"
check "(b) revenue exact (6000)" is_total revenue 2024-02 6000
check "(b) profit exact (250; an empty cell is no figure)" is_total profit 2024-02 250

# (c) .xlsx by openpyxl: a numeric firm-free layout, a date cell for the month
/usr/bin/python3 - "$TMP/book.xlsx" << 'PY'
import sys, datetime, openpyxl
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "11月报表"
ws.append(["企业代码", "指标", "金额", "年月"])
for firm, v in [("ee-001", 1234.5), ("ee-002", 10), ("ee-003", 0.25)]:
    ws.append([firm, "revenue", v, datetime.date(2024, 3, 1)])
    ws.cell(row=ws.max_row, column=4).number_format = "yyyy-mm"
    ws.cell(row=ws.max_row, column=3).number_format = "#,##0.00"
wb.create_sheet("notes").append(["nothing", "here"])
wb.save(sys.argv[1])
PY
check "(c) an .xlsx is sent" "${AGENT[@]}" -a c-xlsx "$TMP/book.xlsx"
check "(c) totals exact (1244.75)" is_total revenue 2024-03 1244.75
"${AGENT[@]}" -a c-xlsx2 --sheet nope "$TMP/book.xlsx" 2> "$TMP/c.err"
check "(c) --sheet names the sheets there" grep -q "no worksheet 'nope' (there are: '11月报表' 'notes')" "$TMP/c.err"

# (d) .xls by xlwt, and a bad row named by its sheet row
/usr/bin/python3 - "$TMP/book.xls" "$TMP/bad.xls" << 'PY'
import sys, xlwt
for path, bad in [(sys.argv[1], False), (sys.argv[2], True)]:
    wb = xlwt.Workbook()
    ws = wb.add_sheet("Sheet1")
    for c, h in enumerate(["firm", "metric", "value", "period"]):
        ws.write(0, c, h)
    rows = [("ee-001", "revenue", 7, "2024/04"), ("ee-002", "revenue", 8.5, "2024年4月")]
    if bad:
        rows.append(("ee-003", "revenue", "lots", "2024-04"))
    for r, row in enumerate(rows, start=1):
        for c, v in enumerate(row):
            ws.write(r, c, v)
    wb.save(path)
PY
check "(d) an .xls is sent" "${AGENT[@]}" -a d-xls "$TMP/book.xls"
check "(d) totals exact (15.5)" is_total revenue 2024-04 15.5
"${AGENT[@]}" -a d-xls2 "$TMP/bad.xls" 2> "$TMP/d.err"
check "(d) a bad cell is named by file, sheet, row and column" \
    grep -q "bad.xls\[Sheet1\]:4: value (column 3 'value'): 'lots' is not a number" "$TMP/d.err"
check "(d) ... and nothing of that file was applied" is_total revenue 2024-04 15.5

# (e) a drop folder
DROP=$TMP/drop
mkdir -p "$DROP"
"${AGENT[@]}" -a e-watch --watch "$DROP" --settle 1s 2> "$TMP/watch.log" &
WPID=$!
PIDS+=("$WPID")
# written slowly: a line every 0.3 s for about 3 s, never still for 1 s
(
    echo "firm,metric,value,period"
    for i in $(seq 1 10); do printf 'ee-%03d,revenue,%d,2024-05\n' "$i" "$i"; sleep 0.3; done
) > "$DROP/slow.csv"
printf 'firm,metric,value,period\nee-011,revenue,1000,2024-05\n' > "$DROP/.quick.csv.part"
mv "$DROP/.quick.csv.part" "$DROP/quick.csv"
printf 'firm,metric,value,period\nee-001,revenue,oops,2024-05\n' > "$DROP/bad.csv"
check "(e) the slow file is sent once finished, whole" wait_for 20 test -e "$DROP/done/slow.csv"
check "(e) the renamed-in file is sent" wait_for 20 test -e "$DROP/done/quick.csv"
check "(e) the bad file is rejected" wait_for 20 test -e "$DROP/rejected/bad.csv.reason"
check "(e) its reason names the line and field" grep -q "bad.csv:2: value (column 3 'value'): 'oops' is not a number" "$DROP/rejected/bad.csv.reason"
check "(e) totals exact (55 + 1000)" is_total revenue 2024-05 1055
stop_pid "$WPID"

# (f) --exec --every: run 2 fails (exit 3), runs 1 and 3 report, later runs send a bare header
cat > "$TMP/cmd.sh" << 'SH'
n=$(($(cat "$1" 2> /dev/null || echo 0) + 1)); echo $n > "$1"
echo "企业,指标,数值,期间"
case $n in 1) echo "ee-001,revenue,100,2024-06" ;; 2) echo "ee-002,revenue,999,2024-06"; exit 3 ;; 3) echo "ee-003,revenue,300,2024-06" ;; esac
SH
"${AGENT[@]}" -a f-exec --exec "sh $TMP/cmd.sh $TMP/count" --every 500ms 2> "$TMP/exec.log" &
XPID=$!
PIDS+=("$XPID")
check "(f) the command ran at least 4 times" wait_for 20 sh -c "[ \$(cat $TMP/count) -ge 4 ]"
check "(f) the failing run is logged with its exit status" grep -q "exited with status 3" "$TMP/exec.log"
check "(f) totals exact (400: the failed run's output is not sent)" wait_for 10 is_total revenue 2024-06 400
stop_pid "$XPID"
check "(f) the command's outputs are removed" sh -c "! ls $TMP/spool/exec-* 2> /dev/null"

stop_daemon
finish
