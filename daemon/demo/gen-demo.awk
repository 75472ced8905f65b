# gen-demo.awk -- generate the clustermon demo data set (FICTIONAL sample firms).
#
#   awk -v out=daemon/demo -f daemon/demo/gen-demo.awk           # write the 4 CSVs
#   awk -v out=/tmp/x -v verbose=1 -f daemon/demo/gen-demo.awk   # + print a summary
#
# Plain POSIX awk (mawk, gawk, gawk --posix). Everything is derived from one
# Park-Miller LCG (seed * 16807 mod 2^31-1, exact in doubles) and the four basic
# arithmetic operations only -- no rand()/srand(), no exp/log -- so the output is
# byte-identical on every run and every awk. All numbers are printed with
# "%.0f"/"%d" so no CONVFMT/OFMT conversion is involved.
#
# Every firm in the output is fictional sample data; see README.md.

BEGIN {
    if (out == "") out = "daemon/demo"
    seed = 20210101
    N = 0

    # ---- fixed targets (see README.md) ----------------------------------
    EE_REV21 = 20580000000      # energy-env 2021 revenue, yuan
    EE_PROF21 = 1234800000      # energy-env 2021 profit (6.00 % margin)
    NE_REV21 = 6840000000       # new-energy 2021 revenue
    NE_PROF21 = 448000000       # new-energy 2021 profit
    SCALE_LINE = 20000000       # "above-scale" line, >= counts
    EE_GROWTH = 110             # energy-env H1 2022 / H1 2021, percent
    NE_GROWTH = 108             # new-energy H1 2022 / H1 2021, percent

    # injected problems
    DROP_ID = "ee-007"          # 2022-05 revenue = half of 2022-04, recovers 2022-06
    SILENT_ID = "ne-037"        # no rows after 2022-03
    SPIKE_ID = "ee-024"         # COD above 50 mg/L, 11:00..13:00 on 2022-07-01

    # 2021 seasonality (Spring Festival dip, strong December)
    split("0.72 0.64 0.96 0.98 1.00 1.04 0.98 0.97 1.04 0.99 1.08 1.40", SEAS, " ")

    init_names()
    build_energy_env()
    build_new_energy()
    annual_figures()
    monthly_2021()
    monthly_2022()
    write_registry()
    write_2021()
    write_2022()
    write_readings()
    if (verbose) summary()
}

# ---- helpers --------------------------------------------------------------

function rnd() {
    seed = (seed * 16807) % 2147483647
    return seed / 2147483647
}

function uni(a, b) { return a + (b - a) * rnd() }

function iround(x) { return x >= 0 ? int(x + 0.5) : -int(-x + 0.5) }

function die(msg) {
    printf "gen-demo.awk: %s\n", msg > "/dev/stderr"
    exit 1
}

function csvq(s) {
    if (s ~ /[",\r\n]/) {
        gsub(/"/, "\"\"", s)
        s = "\"" s "\""
    }
    return s
}

function id3(prefix, k) { return sprintf("%s-%03d", prefix, k) }

# ---- names: fictional Chinese-style names, each marked （示例） --------------

function init_names() {
    NPLACE = split("济宁 济宁 济宁 任城 兖州 曲阜 邹城 微山 鱼台 金乡 嘉祥 汶上 泗水 梁山", PLACE, " ")
    NB1 = split("瑞 泽 恒 康 源 清 宏 嘉 润 启 华 鑫 晟 博 远 德 信 安 盛 澜", B1, " ")
    NB2 = split("禾 川 邦 达 泰 峰 林 诚 宇 辰 洲 和 昊 拓 源 杉 晖 越 霖 岳", B2, " ")
}

function ind_word(kind,   n, t) {
    if (kind == "water-pollution-control") n = split("环保科技 水务 环境工程 水处理设备 污水处理", t, " ")
    else if (kind == "green-building-materials") n = split("新型建材 绿色建材 节能材料 建筑科技", t, " ")
    else if (kind == "solar-pv") n = split("光伏科技 新能源 光电 太阳能科技", t, " ")
    else if (kind == "energy-storage") n = split("储能科技 电池材料 能源科技 电力储能", t, " ")
    else n = split("节能科技 环保设备 资源再生 环境服务 节能服务 固废处置 环保材料", t, " ")
    return t[1 + int(rnd() * n)]
}

function make_name(kind, tier,   b, tries) {
    for (tries = 0; tries < 1000; tries++) {
        b = B1[1 + int(rnd() * NB1)] B2[1 + int(rnd() * NB2)]
        if (!(b in USED)) break
    }
    if (b in USED) die("name table exhausted")
    USED[b] = 1
    return PLACE[1 + int(rnd() * NPLACE)] b ind_word(kind) \
        (tier == "leading" ? "股份有限公司" : "有限公司") "（示例）"
}

function add_firm(fid, cluster, chainv, tierv, desv,   i) {
    i = ++N
    ID[i] = fid; IDX[fid] = i
    CL[i] = cluster; CH[i] = chainv; TI[i] = tierv; DE[i] = desv
    NAME[i] = make_name(chainv == "" ? "member" : chainv, tierv)
    return i
}

# ---- registry -------------------------------------------------------------

function build_energy_env(   k, tier, chain, des, i, need, left, t) {
    # 40 key firms: ee-001..ee-040
    #   leading   ee-001..004  (wpc 001-002, gbm 003-004)
    #   backbone  ee-005..020  (wpc 005-013, gbm 014-020)
    #   potential ee-021..040  (wpc 021-031, gbm 032-040)
    split("006 008 011 013 015 017 019 022 025 028 031 034 037", t, " ")
    for (k in t) SCI["ee-" t[k]] = 1
    for (k = 1; k <= 40; k++) {
        if (k <= 4) { tier = "leading"; chain = (k <= 2) ? "water-pollution-control" : "green-building-materials" }
        else if (k <= 20) { tier = "backbone"; chain = (k <= 13) ? "water-pollution-control" : "green-building-materials" }
        else { tier = "potential"; chain = (k <= 31) ? "water-pollution-control" : "green-building-materials" }
        des = ""
        if (k == 1) des = "provincial-tech-demo"
        if (id3("ee", k) in SCI) des = "provincial-sme-scitech"
        if (k == 11) des = des ";specialized-new"      # exercises the ';' separator
        if (k == 2 || k == 16) des = "specialized-new"
        add_firm(id3("ee", k), "energy-env", chain, tier, des)
    }
    # 157 members: ee-041..ee-197; 74 above the line, 83 below.
    # ee-088 is pinned at exactly 20,000,000 (counts), ee-089 at 19,999,999.
    need = 73; left = 155
    for (k = 41; k <= 197; k++) {
        i = add_firm(id3("ee", k), "energy-env", "", "member", "")
        if (k == 88) { ABOVE[i] = 1; continue }
        if (k == 89) { ABOVE[i] = 0; continue }
        ABOVE[i] = (rnd() * left < need) ? 1 : 0      # selection sampling: exact count
        need -= ABOVE[i]; left--
    }
    # a few names with comma / double quote / both, to exercise CSV parsers
    NAME[IDX["ee-009"]] = "济宁\"碧水\"环境工程有限公司,第二分公司（示例）"
    NAME[IDX["ee-045"]] = "Sample Firm EE-045, Water \"Clearwave\" Services (fictional)"
    NAME[IDX["ee-120"]] = "Sample Firm EE-120, Ltd. (fictional)"
    NAME[IDX["ee-150"]] = "Sample Firm EE-150 \"GreenLoop\" (fictional)"
}

function build_new_energy(   k, tier, chain, des) {
    #   leading   ne-001..003  (solar 001-002, storage 003)
    #   backbone  ne-004..018  (solar 004-011, storage 012-018)
    #   potential ne-019..046  (solar 019-034, storage 035-046)
    for (k = 1; k <= 46; k++) {
        if (k <= 3) { tier = "leading"; chain = (k <= 2) ? "solar-pv" : "energy-storage" }
        else if (k <= 18) { tier = "backbone"; chain = (k <= 11) ? "solar-pv" : "energy-storage" }
        else { tier = "potential"; chain = (k <= 34) ? "solar-pv" : "energy-storage" }
        des = ""
        if (k <= 3 || k == 7 || k == 12) des = "high-tech"
        if (k == 1) des = "high-tech;specialized-new"
        if (k == 22 || k == 40) des = "specialized-new"
        add_firm(id3("ne", k), "new-energy", chain, tier, des)
    }
    NAME[IDX["ne-005"]] = "济宁\"光合\"新能源有限公司（示例）"
    NAME[IDX["ne-020"]] = "Sample Firm NE-020 \"SunBridge\", Storage Unit (fictional)"
}

# ---- annual 2021 figures ----------------------------------------------------

function raw_revenue(i,   u) {
    u = rnd()
    if (CL[i] == "energy-env") {
        if (TI[i] == "leading") return 1200e6 + 1000e6 * u
        if (TI[i] == "backbone") return 150e6 + 350e6 * u
        if (TI[i] == "potential") return 30e6 + 90e6 * u
        if (ABOVE[i]) return 21e6 + 70e6 * u * u      # long tail
        return 1.5e6 + 18e6 * u
    }
    if (TI[i] == "leading") return 700e6 + 400e6 * u
    if (TI[i] == "backbone") return 100e6 + 160e6 * u
    return 20e6 + 70e6 * u * u
}

function margin(i,   u) {
    u = rnd()
    if (TI[i] == "leading") return 0.07 + 0.03 * u
    if (TI[i] == "backbone") return 0.04 + 0.05 * u
    if (TI[i] == "potential") return (CL[i] == "new-energy") ? -0.01 + 0.10 * u : 0.03 + 0.05 * u
    if (ABOVE[i]) return 0.01 + 0.07 * u
    return -0.015 + 0.105 * u                        # a few small members lose money
}

function intensity(i,   u) {                          # tce per 10,000 yuan revenue
    u = rnd()
    if (CH[i] == "green-building-materials") return 0.15 + 0.25 * u
    if (CH[i] == "water-pollution-control") return 0.03 + 0.05 * u
    if (CH[i] == "solar-pv") return 0.04 + 0.06 * u
    if (CH[i] == "energy-storage") return 0.03 + 0.05 * u
    return 0.05 + 0.20 * u
}

# Scale RAW[] of the firms with GRP[i] == grp so they sum to target exactly;
# the rounding residual goes to firm `sink` (which must be in the group).
function scale_group(RAW, OUTV, grp, target, sink,   i, s, k, tot) {
    s = 0
    for (i = 1; i <= N; i++) if (GRP[i] == grp) s += RAW[i]
    k = target / s
    tot = 0
    for (i = 1; i <= N; i++) if (GRP[i] == grp) { OUTV[i] = iround(RAW[i] * k); tot += OUTV[i] }
    OUTV[sink] += target - tot
}

function annual_figures(   i, fixed, e1, n1) {
    fixed = 0
    for (i = 1; i <= N; i++) {
        RAWREV[i] = iround(raw_revenue(i) / 1000) * 1000
        if (CL[i] == "new-energy") GRP[i] = "ne"
        else if (ID[i] == "ee-088") { REV[i] = 20000000; GRP[i] = "ee-fixed" }
        else if (ID[i] == "ee-089") { REV[i] = 19999999; GRP[i] = "ee-fixed" }
        else if (TI[i] == "member" && !ABOVE[i]) { REV[i] = RAWREV[i]; GRP[i] = "ee-fixed" }
        else GRP[i] = "ee-scaled"
        if (GRP[i] == "ee-fixed") fixed += REV[i]
    }
    e1 = IDX["ee-001"]; n1 = IDX["ne-001"]
    scale_group(RAWREV, REV, "ee-scaled", EE_REV21 - fixed, e1)
    scale_group(RAWREV, REV, "ne", NE_REV21, n1)
    for (i = 1; i <= N; i++) {
        if (CL[i] == "energy-env" && TI[i] == "member" && ID[i] != "ee-088" && ID[i] != "ee-089") {
            if (ABOVE[i] && REV[i] < SCALE_LINE) die(ID[i] " fell below the line")
            if (!ABOVE[i] && REV[i] >= SCALE_LINE) die(ID[i] " rose above the line")
        }
        RAWPROF[i] = REV[i] * margin(i)
        PGRP[i] = CL[i]
        ENERGY[i] = iround(REV[i] / 10000 * intensity(i))
    }
    for (i = 1; i <= N; i++) GRP[i] = PGRP[i]
    scale_group(RAWPROF, PROF, "energy-env", EE_PROF21, e1)
    scale_group(RAWPROF, PROF, "new-energy", NE_PROF21, n1)
}

# ---- monthly series -------------------------------------------------------

# Split annual total A over 12 months (seasonality + noise); months sum to A.
function split12(A, M, amp,   k, w, W, s) {
    W = 0
    for (k = 1; k <= 12; k++) { w[k] = SEAS[k] * (1 + amp * (rnd() - 0.5)); W += w[k] }
    s = 0
    for (k = 1; k <= 11; k++) { M[k] = iround(A * w[k] / W); s += M[k] }
    M[12] = A - s
}

function monthly_2021(   i, k, M) {
    for (i = 1; i <= N; i++) {
        split12(REV[i], M, 0.08)
        for (k = 1; k <= 12; k++) R21[i, k] = M[k]
        split12(PROF[i], M, 0.20)
        for (k = 1; k <= 12; k++) P21[i, k] = M[k]
    }
}

function monthly_2022(   i, k, g, sraw, h1, fixed, target, kf, tot, d, sink, cl, clname) {
    for (i = 1; i <= N; i++) {
        g = (CL[i] == "energy-env") ? uni(1.05, 1.15) : uni(1.01, 1.15)
        for (k = 1; k <= 6; k++) {
            HAS22[i, k] = !(ID[i] == SILENT_ID && k > 3)
            RAW22[i, k] = R21[i, k] * g * (1 + 0.04 * (rnd() - 0.5))
        }
    }
    # the dropping firm: fixed, not rescaled
    d = IDX[DROP_ID]
    R22[d, 1] = iround(RAW22[d, 1]); R22[d, 2] = iround(RAW22[d, 2]); R22[d, 3] = iround(RAW22[d, 3])
    R22[d, 4] = 2 * iround(RAW22[d, 4] / 2)
    R22[d, 5] = R22[d, 4] / 2
    R22[d, 6] = iround(RAW22[d, 6])
    # rescale each cluster so H1 2022 (rows reported) = H1 2021 * growth exactly
    for (cl = 1; cl <= 2; cl++) {
        clname = (cl == 1) ? "energy-env" : "new-energy"
        sink = IDX[(cl == 1) ? "ee-001" : "ne-001"]
        h1 = 0; sraw = 0; fixed = 0
        for (i = 1; i <= N; i++) if (CL[i] == clname)
            for (k = 1; k <= 6; k++) {
                h1 += R21[i, k]
                if (!HAS22[i, k]) continue
                if (i == d) fixed += R22[i, k]
                else sraw += RAW22[i, k]
            }
        target = iround(h1 * ((cl == 1) ? EE_GROWTH : NE_GROWTH) / 100)
        H1_21[clname] = h1; H1_22[clname] = target
        kf = (target - fixed) / sraw
        tot = fixed
        for (i = 1; i <= N; i++) if (CL[i] == clname && i != d)
            for (k = 1; k <= 6; k++) if (HAS22[i, k]) { R22[i, k] = iround(RAW22[i, k] * kf); tot += R22[i, k] }
        R22[sink, 6] += target - tot
    }
    # profit follows revenue with some noise
    for (i = 1; i <= N; i++)
        for (k = 1; k <= 6; k++) if (HAS22[i, k])
            P22[i, k] = iround(P21[i, k] * R22[i, k] / R21[i, k] * (1 + 0.10 * (rnd() - 0.5)))
}

# ---- writers --------------------------------------------------------------

function write_registry(   f, i) {
    f = out "/registry.csv"
    printf "id,name,cluster,chain,tier,designations\n" > f
    for (i = 1; i <= N; i++)
        printf "%s,%s,%s,%s,%s,%s\n", ID[i], csvq(NAME[i]), CL[i], CH[i], TI[i], DE[i] > f
    close(f)
}

function write_2021(   f, i, k, per) {
    f = out "/2021.csv"
    printf "enterprise,metric,value,period\n" > f
    for (k = 1; k <= 12; k++) {
        per = sprintf("2021-%02d", k)
        for (i = 1; i <= N; i++) {
            printf "%s,revenue,%.0f,%s\n", ID[i], R21[i, k], per > f
            printf "%s,profit,%.0f,%s\n", ID[i], P21[i, k], per > f
        }
    }
    for (i = 1; i <= N; i++) printf "%s,energy,%.0f,2021\n", ID[i], ENERGY[i] > f
    close(f)
}

function write_2022(   f, i, k, per) {
    f = out "/2022.csv"
    printf "enterprise,metric,value,period\n" > f
    for (k = 1; k <= 6; k++) {
        per = sprintf("2022-%02d", k)
        for (i = 1; i <= N; i++) if (HAS22[i, k]) {
            printf "%s,revenue,%.0f,%s\n", ID[i], R22[i, k], per > f
            printf "%s,profit,%.0f,%s\n", ID[i], P22[i, k], per > f
        }
    }
    close(f)
}

# COD readings, integer tenths of mg/L, printed as d.d
function write_readings(   f, i, h, t, base) {
    f = out "/readings.csv"
    printf "enterprise,metric,value,timestamp\n" > f
    for (i = 1; i <= N; i++) if (CH[i] == "water-pollution-control") BASE[i] = 180 + int(rnd() * 120)
    for (h = 8; h <= 20; h++)
        for (i = 1; i <= N; i++) if (CH[i] == "water-pollution-control") {
            t = BASE[i] + int(rnd() * 70) - 35
            if (t < 150) t = 150
            if (t > 399) t = 399
            if (ID[i] == SPIKE_ID) {
                if (h == 10) t = 384
                if (h == 11) t = 568
                if (h == 12) t = 672
                if (h == 13) t = 615
                if (h == 14) t = 364
            }
            COD[i, h] = t
            printf "%s,cod,%d.%d,2022-07-01T%02d:00:00+08:00\n", ID[i], int(t / 10), t % 10, h > f
        }
    close(f)
}

# ---- summary (verbose=1) ----------------------------------------------------

function summary(   i, k, c, cl, n, above, s, p, d, z, lfl21, lfl22) {
    for (c = 1; c <= 2; c++) {
        cl = (c == 1) ? "energy-env" : "new-energy"
        n = above = s = p = 0
        for (i = 1; i <= N; i++) if (CL[i] == cl) {
            n++; s += REV[i]; p += PROF[i]; if (REV[i] >= SCALE_LINE) above++
        }
        printf "%s: firms %d, above-scale %d, rev21 %.0f, prof21 %.0f\n", cl, n, above, s, p
        printf "  H1 2021 rev %.0f, H1 2022 rev %.0f (rows reported), growth %.4f %%\n", \
            H1_21[cl], H1_22[cl], (H1_22[cl] / H1_21[cl] - 1) * 100
        lfl21 = lfl22 = 0
        for (i = 1; i <= N; i++) if (CL[i] == cl && ID[i] != SILENT_ID)
            for (k = 1; k <= 6; k++) { lfl21 += R21[i, k]; lfl22 += R22[i, k] }
        printf "  like-for-like (w/o %s): %.0f -> %.0f, %.4f %%\n", SILENT_ID, lfl21, lfl22, (lfl22 / lfl21 - 1) * 100
    }
    d = IDX[DROP_ID]
    printf "%s (%s) 2022 revenue:", DROP_ID, CH[d]
    for (k = 1; k <= 6; k++) printf " %.0f", R22[d, k]
    printf "\n  2022 profit:"; for (k = 1; k <= 6; k++) printf " %.0f", P22[d, k]
    printf "\n  2021 revenue Apr-Jun: %.0f %.0f %.0f\n", R21[d, 4], R21[d, 5], R21[d, 6]
    z = IDX[SILENT_ID]
    printf "%s (%s %s) 2022 revenue Jan-Mar: %.0f %.0f %.0f; 2021 Apr-Jun %.0f %.0f %.0f; rev21 %.0f\n", \
        SILENT_ID, TI[z], CH[z], R22[z, 1], R22[z, 2], R22[z, 3], R21[z, 4], R21[z, 5], R21[z, 6], REV[z]
    z = IDX[SPIKE_ID]
    printf "%s COD:", SPIKE_ID
    for (k = 8; k <= 20; k++) printf " %02d:%d.%d", k, int(COD[z, k] / 10), COD[z, k] % 10
    printf "\n"
    printf "ee-088 rev21 %.0f, ee-089 rev21 %.0f; ee-001 rev21 %.0f; ne-001 rev21 %.0f\n", \
        REV[IDX["ee-088"]], REV[IDX["ee-089"]], REV[IDX["ee-001"]], REV[IDX["ne-001"]]
    n = 0; for (i = 1; i <= N; i++) if (PROF[i] < 0) n++
    printf "firms with 2021 loss: %d\n", n
    s = 0; for (i = 1; i <= N; i++) if (CL[i] == "energy-env") s += ENERGY[i]
    printf "energy-env energy 2021: %.0f tce\n", s
    s = 0; for (i = 1; i <= N; i++) if (CL[i] == "new-energy") s += ENERGY[i]
    printf "new-energy energy 2021: %.0f tce\n", s
    p = 1e18; s = 0
    for (i = 1; i <= N; i++) for (k = 1; k <= 12; k++) { if (R21[i, k] < p) p = R21[i, k]; if (P21[i,k] < s) s = P21[i, k] }
    printf "min monthly rev21 %.0f, min monthly prof21 %.0f\n", p, s
}
