#!/usr/bin/env bash
# scaling_study.sh - jobs/scaling-study.slurm end to end on a 2-node local cluster (1 core per node),
# at a few steps per run: one job per node count and the report job after them; the report has
# every run (1 node; 2 nodes pp x dp = 2 x 1 and 1 x 2, strong and weak; the 2-rank layouts on one
# node, oversubscribed), predicted beside measured, the PNG figures, the same losses bitwise for the
# same layout on 1 and 2 nodes, and predicted peak memory per rank within 10% of measured. The
# predicted step times are printed, not asserted: this machine is shared, timings are not tests.
set -euo pipefail
source "${LP_SOURCE_DIR:?run through ctest}/tests/e2e/cluster.sh"
[ "$(id -u)" = 0 ] || { echo "SKIPPED: the local Slurm cluster needs root"; exit 77; }
command -v nsenter >/dev/null && command -v ip >/dev/null || { echo "SKIPPED: needs ip (iproute2) and nsenter (util-linux)"; exit 77; }
lp_cluster_start --nodes 2
S=$T/study
t0=$(date +%s)
(cd "$SRC" && LP_STUDY_STEPS=6 bash jobs/scaling-study.slurm --nodes 1,2 --dir "$S" --wait) > "$T/study.log" 2>&1 ||
  fail "scaling study: $(tail -5 "$T/study.log"; tail -5 "$S"/*.out 2>/dev/null)"
echo "study done in $(( $(date +%s) - t0 )) s"
[ -s "$S/report.md" ] || fail "no report"
for p in speedup efficiency breakdown memory predicted_vs_measured; do
  [ "$(head -c 8 "$S/$p.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$p.png is not a PNG"
  grep -q "($p.png)" "$S/report.md" || fail "report does not show $p.png"
done
/usr/bin/python3 - "$S/summary.json" <<'PY' || fail "study summary: $(cat "$S/report.md")"
import json, sys
j = json.load(open(sys.argv[1]))
runs = {r["name"]: r for r in j["runs"]}
want = {"n1-pp1-dp1", "n1-pp1-dp2-oversubscribed", "n1-pp2-dp1-oversubscribed", "n2-pp1-dp2-strong",
        "n2-pp1-dp2-weak", "n2-pp2-dp1-strong", "n2-pp2-dp1-weak"}
assert set(runs) == want, sorted(runs)
assert runs["n2-pp2-dp1-strong"]["hosts"] == ["node1", "node2"], runs["n2-pp2-dp1-strong"]["hosts"]
assert runs["n1-pp1-dp1"]["hosts"] == ["node1"]
assert runs["n2-pp1-dp2-weak"]["G"] == 2 * runs["n2-pp1-dp2-strong"]["G"]
for r in runs.values():
    assert r["n_steps"] == 6 and r["p_step"] > 0 and r["step"] > 0, r["name"]
    assert r["mem_ok"], (r["name"], r["mem"], r["p_mem"])
b = {(x["pp"], x["dp"]): x for x in j["bitwise"]}
assert set(b) == {(1, 2), (2, 1)} and all(x["same"] and x["nodes"] == [1, 2] for x in b.values()), j["bitwise"]
for r in j["runs"]:
    print("%-28s step measured %.3f s predicted %.3f s (%+.0f%%), peak memory %+.1f%%" % (
        r["name"], r["step"], r["p_step"], 100 * r["step_err"], 100 * r["mem_err"]))
PY
grep -q "yes (bitwise)" "$S/report.md" || fail "report has no bitwise line"
echo "scaling_study: passed"
