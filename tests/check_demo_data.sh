#!/bin/sh
# check_demo_data.sh -- verify the demo data set in daemon/demo/ (fictional firms).
#
#   sh tests/check_demo_data.sh            # uses awk (mawk on Debian)
#   AWK=gawk sh tests/check_demo_data.sh
#
# Checks the headline figures from the CSVs themselves (a real quoted-CSV
# splitter, so names with commas and double quotes are fine) and that
# daemon/demo/gen-demo.awk regenerates byte-identical files.
# Prints one line per check and "demo-data: N passed, M failed"; exit 1 on failure.

set -u
set -f
AWK=${AWK:-awk}
root=$(cd "$(dirname "$0")/.." && pwd) || exit 2
demo=$root/daemon/demo
pass=0
fail=0

report() { # "ok <text>" | "FAIL <text>"
    case $1 in
    ok\ *) pass=$((pass + 1)) ;;
    *) fail=$((fail + 1)) ;;
    esac
    printf '%s\n' "$1"
}

prog='
function csvsplit(line, f,   n, i, c, L, fld, inq) {
    sub(/\r$/, "", line)
    if (index(line, "\"") == 0) return split(line, f, ",")
    n = 0; fld = ""; inq = 0; L = length(line)
    for (i = 1; i <= L; i++) {
        c = substr(line, i, 1)
        if (inq) {
            if (c == "\"") {
                if (substr(line, i + 1, 1) == "\"") { fld = fld "\""; i++ }
                else inq = 0
            } else fld = fld c
        } else if (c == "\"") inq = 1
        else if (c == ",") { f[++n] = fld; fld = "" }
        else fld = fld c
    }
    f[++n] = fld
    return n
}
function res(ok, text) { printf "%s %s\n", ok ? "ok  " : "FAIL", text }
FNR == 1 {
    file++
    nf = csvsplit($0, h)
    for (k in col) delete col[k]
    for (k = 1; k <= nf; k++) col[h[k]] = k
    if (file == 1) need = "id name cluster chain tier designations"
    else need = "enterprise metric value period"
    nn = split(need, w, " ")
    for (k = 1; k <= nn; k++) if (!(w[k] in col)) { printf "FAIL header of %s lacks %s\n", FILENAME, w[k]; bad++ }
    next
}
file == 1 {
    n = csvsplit($0, f)
    if (n != nf) { printf "FAIL %s:%d: %d fields, header has %d\n", FILENAME, FNR, n, nf; bad++; next }
    id = f[col["id"]]
    if (id in CL) { printf "FAIL duplicate id %s\n", id; bad++ }
    cl = CL[id] = f[col["cluster"]]; ch = f[col["chain"]]; ti = f[col["tier"]]
    key = (ti == "leading" || ti == "backbone" || ti == "potential")
    if (cl == "energy-env") {
        ee++
        if (key && (ch == "water-pollution-control" || ch == "green-building-materials")) eekey++
        else if (ti == "member" && ch == "") eemem++
        else eeodd++
        nd = split(f[col["designations"]], d, ";")
        td = sd = 0
        for (k = 1; k <= nd; k++) {
            if (d[k] == "provincial-tech-demo") td = 1
            if (d[k] == "provincial-sme-scitech") sd = 1
        }
        if ((td || sd) && !key) desodd++
        tech += td; sci += sd; both += (td && sd); anyd += (td || sd)
    } else if (cl == "new-energy") {
        ne++
        if (key && (ch == "solar-pv" || ch == "energy-storage")) nekey++
    }
    next
}
{
    n = csvsplit($0, f)
    if (f[col["period"]] !~ /^2021-(0[1-9]|1[0-2])$/) next
    id = f[col["enterprise"]]; m = f[col["metric"]]
    if (!(id in CL)) { unknown++; next }
    if (m == "revenue") { REV[id] += f[col["value"]]; SUM[CL[id], "revenue"] += f[col["value"]] }
    else if (m == "profit") SUM[CL[id], "profit"] += f[col["value"]]
}
END {
    above = 0
    for (id in CL) if (CL[id] == "energy-env" && REV[id] >= 20000000) above++
    res(ee == 197, sprintf("energy-env firms in registry: %d (want 197)", ee))
    res(above == 114, sprintf("energy-env firms with 2021 revenue >= 20000000: %d (want 114)", above))
    res(SUM["energy-env", "revenue"] == 20580000000, \
        sprintf("energy-env 2021 revenue: %.0f (want 20580000000)", SUM["energy-env", "revenue"]))
    res(eekey == 40 && eemem == 157 && eeodd == 0, \
        sprintf("energy-env key firms on the two chains: %d, members without chain: %d, other: %d (want 40, 157, 0)", eekey, eemem, eeodd))
    res(tech == 1 && sci == 13 && both == 0 && anyd == 14 && desodd == 0, \
        sprintf("energy-env provincial-tech-demo: %d, provincial-sme-scitech: %d, distinct: %d, on non-key firms: %d (want 1, 13, 14, 0)", tech, sci, anyd, desodd))
    res(ne == 46 && nekey == 46, sprintf("new-energy key firms on solar-pv/energy-storage: %d of %d (want 46 of 46)", nekey, ne))
    res(SUM["new-energy", "revenue"] == 6840000000, \
        sprintf("new-energy 2021 revenue: %.0f (want 6840000000)", SUM["new-energy", "revenue"]))
    res(SUM["new-energy", "profit"] == 448000000 && unknown == 0 && bad == 0, \
        sprintf("new-energy 2021 profit: %.0f (want 448000000); rows of unknown firms: %d; malformed: %d", \
            SUM["new-energy", "profit"], unknown, bad))
}'

for f in registry.csv 2021.csv 2022.csv readings.csv; do
    [ -r "$demo/$f" ] || { report "FAIL missing $demo/$f"; }
done

out=$("$AWK" "$prog" "$demo/registry.csv" "$demo/2021.csv") || report "FAIL $AWK exited non-zero on the CSVs"
# one line per check; a malformed-input line (FAIL ...) counts as a failure too
nl='
'
old_ifs=$IFS
IFS=$nl
for line in $out; do
    IFS=$old_ifs
    report "$line"
done
IFS=$old_ifs

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
if "$AWK" -v out="$tmp" -f "$demo/gen-demo.awk"; then
    diffs=""
    for f in registry.csv 2021.csv 2022.csv readings.csv; do
        cmp -s "$tmp/$f" "$demo/$f" || diffs="$diffs $f"
    done
    if [ -z "$diffs" ]; then
        report "ok   regenerated files are byte-identical ($AWK)"
    else
        report "FAIL regenerated files differ ($AWK):$diffs"
    fi
else
    report "FAIL gen-demo.awk failed ($AWK)"
fi

echo "demo-data: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
