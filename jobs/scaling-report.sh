#!/usr/bin/env bash
# scaling-report.sh DIR - the report of a scaling study (jobs/scaling-study.slurm): for every run in
# DIR/runs, the measurements (median step of metrics.jsonl after 2 warm-up steps; its time split
# into compute, bubble, point-to-point, all-reduce and optimizer as training measures it (the
# time_*_s fields, pipeline.h); peak resident memory per stage) beside the prediction of `llamapro plan`
# for the same layout (one rate calibration for all, the network measured in the run's allocation);
# strong and weak scaling; the bitwise loss check across node counts; gnuplot figures. Writes
# DIR/report.md, DIR/*.png and DIR/summary.json. Needs llamapro on PATH (slurm/env.sh), python3
# (Debian's, /usr/bin/python3) and gnuplot.
set -euo pipefail
D=${1:?usage: scaling-report.sh STUDY_DIR}
[ -d "$D/runs" ] || { echo "scaling-report: no $D/runs (run jobs/scaling-study.slurm first)" >&2; exit 1; }
. "$D/study.env"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
say() { echo "[$(date +%H:%M:%S)] scaling-report: $*" >&2; }

# the cost model's rates: each run's calibration (jobs/scaling-study.slurm measures them on the run's
# ranks just before it), and the median per kind of work over the calibrations of every run with
# the same ranks per core (oversubscribed or not: a rank on a core of its own, or sharing one),
# which measure the same thing; a single calibration of a few milliseconds swings by +-30% on a
# busy machine while the runs' steps do not
$PY - "$D" > "$D/rates.tsv" <<'PY'
import glob, json, os, re, statistics, sys
D = sys.argv[1]
rows = []
for d in sorted(glob.glob(f"{D}/runs/*/")):
    if not os.path.exists(d + "done"):
        continue
    lay = json.load(open(d + "layout.json"))
    m = re.search(r"measured GFLOP/s layer fwd ([0-9.]+), in-grad ([0-9.]+), w-grad ([0-9.]+), head ([0-9.]+)/([0-9.]+)/([0-9.]+)",
                  open(lay["rates"]).read())
    if not m:
        sys.exit(f"scaling-report: no rates in {lay['rates']}")
    rows.append((d.rstrip("/"), lay["oversubscribed"], [float(x) for x in m.groups()]))
for d, over, r in rows:
    pool = [x for _, o, x in rows if o == over]
    med = [statistics.median(x[k] for x in pool) for k in range(6)]
    print(d, ",".join("%g" % x for x in r), ",".join("%g" % x for x in med), len(pool), sep="\t")
PY
while IFS=$'\t' read -r d rr pooled npool; do
  read -r n r pp dp B G part < <($PY -c 'import json,sys; j=json.load(open(sys.argv[1]))
# the partition the run used (its memory lines name the layers per stage): predict that one
st = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    if "memory_stage" in r: st[r["memory_stage"]] = r["layers"]
print(j["nodes"], j["ranks"], j["pp"], j["dp"], j["micro_batch"], j["global_batch"], ",".join(str(st[s]) for s in sorted(st)))' \
    "$d/layout.json" "$d/metrics.jsonl")
  net=()
  [ -s "$D/net-n$n.json" ] && net=(--net "$D/net-n$n.json")
  echo "$npool $pooled" > "$d/rates-pooled"
  for v in plan-own:"$rr" plan:"$pooled"; do
    llamapro plan --config "$config" model.path="$D/expanded.h5" parallel.partition="$part" --rates "${v#*:}" --nodes "$n" \
      --ranks-per-node $(( r / n )) --pp "$pp" --micro-batch "$B" --global-batch "$G" --schedules 1f1b "${net[@]}" \
      --json "$d/${v%%:*}.json" > "$d/${v%%:*}.txt"
  done
done < "$D/rates.tsv"
for d in "$D"/runs/*/; do [ -e "$d/done" ] || say "$(basename "$d"): not finished, left out"; done

$PY - "$D" <<'PY'
import glob, json, os, statistics, sys
D = sys.argv[1]
runs = []
for d in sorted(glob.glob(f"{D}/runs/*/")):
    if not os.path.exists(d + "done") or not os.path.exists(d + "plan.json"):
        continue
    lay = json.load(open(d + "layout.json"))
    rows = [json.loads(l) for l in open(d + "metrics.jsonl")]
    steps = [r for r in rows if "grad_norm" in r]
    mem = {}
    for r in rows:
        if "memory_stage" in r:
            mem[r["memory_stage"]] = r
    tok = lay["global_batch"] * lay["seq_len"]
    meas = steps[2:] if len(steps) > 4 else steps
    dt = [tok / r["tokens_per_s"] for r in meas]
    if "time_compute_s" in meas[0]:
        # training's own split (pipeline.h): the schedule simulated on the measured compute gives
        # the bubble, the rest of the pipeline phase is messages; the collectives and the optimizer
        # of the stage that waits for no other
        part = {k: [r[f"time_{k}_s"] for r in meas] for k in ("compute", "bubble", "p2p", "allreduce", "optim")}
    else:  # metrics of an older llamapro: wait holds bubble and messages, opt holds the collectives
        comp = [max(a + b + c for a, b, c in zip(r["stage_fwd_s"], r["stage_bin_s"], r["stage_bwt_s"])) for r in meas]
        opt = [min(r["stage_opt_s"]) for r in meas]
        part = dict(compute=comp, bubble=[t - c - o for t, c, o in zip(dt, comp, opt)], p2p=[0.0] * len(meas),
                    allreduce=opt, optim=[0.0] * len(meas))
    part = {k: statistics.median(v) for k, v in part.items()}
    # the step is the slowest rank's wall time: what none of the parts holds (ranks starting the
    # step apart, the metrics line) is left over
    other = statistics.median(dt) - sum(part.values())
    [p] = [p for p in map(json.loads, open(d + "plan.json")) if p["pp"] == lay["pp"] and p["dp"] == lay["dp"]]
    [praw] = [p for p in map(json.loads, open(d + "plan-own.json")) if p["pp"] == lay["pp"] and p["dp"] == lay["dp"]]
    npool = int(open(d + "rates-pooled").read().split()[0])
    runs.append(dict(
        name=lay["name"], nodes=lay["nodes"], ranks=lay["ranks"], pp=lay["pp"], dp=lay["dp"], G=lay["global_batch"],
        M=lay["microbatches"], B=lay["micro_batch"], over=lay["oversubscribed"], hosts=sorted(set(lay["hosts"])),
        scale="weak" if lay["name"].endswith("-weak") else "strong" if lay["name"].endswith("-strong") else
              ("both" if lay["nodes"] == 1 and not lay["oversubscribed"] else "-"),
        step=statistics.median(dt), tok_s=statistics.median(tok / t for t in dt), compute=part["compute"],
        m_bubble=part["bubble"], p2p=part["p2p"], allreduce=part["allreduce"], optim=part["optim"], other=other,
        bubble=statistics.median(r["bubble"] for r in meas),
        losses=[r["loss"] for r in steps], n_steps=len(steps),
        mem=[mem[s]["vmhwm_bytes"] for s in sorted(mem)], state=[mem[s]["weights_bytes"] + mem[s]["grads_bytes"] +
             mem[s]["optim_bytes"] + mem[s]["acts_bytes"] for s in sorted(mem)],
        p_step=p["step_s"], p_step_raw=praw["step_s"], npool=npool, p_compute=p["compute_s"], p_bubble=p["bubble_s"], p_p2p=p["p2p_s"],
        p_allreduce=p["allreduce_s"], p_optim=p["optim_s"], p_tok_s=p["tokens_per_s"], p_bubble_frac=p["bubble"],
        p_mem=[s["mem_bytes"] for s in p["stages"]]))
if not runs:
    sys.exit("scaling-report: no finished run in %s/runs" % D)

def err(p, m): return (p - m) / m
for r in runs:
    r["step_err"] = err(r["p_step"], r["step"])
    r["step_err_raw"] = err(r["p_step_raw"], r["step"])
    r["mem_err"] = max((err(p, m) for p, m in zip(r["p_mem"], r["mem"])), key=abs)
    r["time_ok"] = abs(r["step_err"]) <= 0.20
    r["mem_ok"] = abs(r["mem_err"]) <= 0.10

# strong / weak scaling against the one-node run of one rank per core
base = [r for r in runs if r["nodes"] == 1 and not r["over"] and r["pp"] == 1]
base = base[0] if base else None
for r in runs:
    r["speedup"] = r["tok_s"] / base["tok_s"] if base else float("nan")
    r["eff"] = r["speedup"] / r["nodes"] if base else float("nan")
    r["p_speedup"] = r["p_tok_s"] / base["p_tok_s"] if base else float("nan")

# bitwise: the same layout (pp, dp, global batch, one thread per rank) on different node counts
groups = {}
for r in runs:
    groups.setdefault((r["pp"], r["dp"], r["G"]), []).append(r)
bitwise = []
for k, rs in sorted(groups.items()):
    counts = sorted({r["nodes"] for r in rs})
    if len(counts) < 2:
        continue
    ref = rs[0]
    same = all(r["losses"] == ref["losses"] for r in rs)
    bitwise.append(dict(pp=k[0], dp=k[1], G=k[2], runs=[r["name"] for r in rs], nodes=counts, same=same,
                        steps=ref["n_steps"], last=ref["losses"][-1]))

# data files for gnuplot
with open(f"{D}/speedup.dat", "w") as f:
    f.write("# family nodes speedup efficiency predicted_speedup\n")
    for fam, sel in (("strong-pp", lambda r: r["scale"] in ("strong", "both") and r["dp"] == 1),
                     ("strong-dp", lambda r: r["scale"] in ("strong", "both") and r["pp"] == 1),
                     ("weak-pp", lambda r: r["scale"] in ("weak", "both") and r["dp"] == 1),
                     ("weak-dp", lambda r: r["scale"] in ("weak", "both") and r["pp"] == 1)):
        pts = sorted((r["nodes"], r["speedup"], r["eff"], r["p_speedup"]) for r in runs if not r["over"] and sel(r))
        f.write(f"# {fam}\n" + "".join("%d %.4f %.4f %.4f\n" % p for p in pts) + "\n\n")
with open(f"{D}/breakdown.dat", "w") as f:
    f.write("# run m_compute m_bubble m_p2p m_allreduce m_optim m_other p_compute p_bubble p_p2p p_allreduce p_optim\n")
    for r in runs:
        f.write("%s %.5f %.5f %.5f %.5f %.5f %.5f %.5f %.5f %.5f %.5f %.5f\n" % (
            r["name"].replace("-oversubscribed", "-os"), r["compute"], r["m_bubble"], r["p2p"], r["allreduce"], r["optim"],
            max(r["other"], 0.0), r["p_compute"], r["p_bubble"], r["p_p2p"], r["p_allreduce"], r["p_optim"]))
with open(f"{D}/memory.dat", "w") as f:
    f.write("# run-stage measured_MB predicted_MB\n")
    for r in runs:
        for s, (m, p) in enumerate(zip(r["mem"], r["p_mem"])):
            f.write("%s/s%d %.2f %.2f\n" % (r["name"].replace("-oversubscribed", "-os"), s, m / 1e6, p / 1e6))
with open(f"{D}/pred.dat", "w") as f:
    f.write("# measured_step predicted_step name\n")
    for r in runs:
        f.write("%.5f %.5f %s\n" % (r["step"], r["p_step"], r["name"].replace("-oversubscribed", "-os")))
json.dump(dict(runs=runs, bitwise=bitwise), open(f"{D}/summary.json", "w"), indent=1)

# the markdown
net = {}
for f in glob.glob(f"{D}/net-n*.json"):
    net[os.path.basename(f)] = json.load(open(f))
rates = {}
for r in runs:
    line = [l for l in open(f"{D}/runs/{r['name']}/rates.txt") if "GFLOP/s" in l][0]
    rates[r["name"]] = line.split("GFLOP/s ", 1)[1].split(";")[0]
for over in (False, True):
    pooled = [r for r in runs if r["over"] == over]
    if pooled:
        x = open(f"{D}/runs/{pooled[0]['name']}/rates-pooled").read().split()[1].split(",")
        rates["median, " + ("ranks sharing cores" if over else "a core per rank")] = (
            "layer fwd %s, in-grad %s, w-grad %s, head %s/%s/%s" % tuple(x))
L = []
w = L.append
w("# Scaling study\n")
hosts = sorted({h for r in runs for h in r["hosts"]})
w(f"Nodes seen: {', '.join(hosts)}. Workload: a random model of the study config expanded by 2 blocks (only the new "
  f"blocks train), {runs[0]['B']} sequences per microbatch of {json.load(open(glob.glob(D + '/runs/*/layout.json')[0]))['seq_len']} "
  f"tokens, one thread per rank, {runs[0]['n_steps']} steps per run; times are medians of the steps after 2 warm-up steps.\n")
w("Predictions: `llamapro plan` for each run's layout and partition, with the cost model's rates calibrated on the "
  "run's allocation just before it (every rank measuring at once, as in training; GFLOP/s per rank):\n")
for k, v in rates.items():
    w(f"- {k}: {v}")
w("\nand the network measured by `llamapro bench --network` in each allocation:\n")
for k, j in sorted(net.items()):
    parts = []
    for kind in ("intra", "inter"):
        if j.get(kind):
            parts.append("%s %.1f us, %.2f GB/s" % ("inside a node" if kind == "intra" else "between nodes",
                         j[kind]["latency_s"] * 1e6, j[kind]["bandwidth_Bps"] * 1e-9))
    w(f"- `{k}` ({', '.join(j['hosts'])}): {'; '.join(parts)}")
w("")
w("## Predicted and measured, side by side\n")
w("Measured time per step (seconds, medians) splits as `llamapro plan` predicts it: compute (the busiest stage's "
  "forward and backward), bubble (what the schedule adds, simulated on the measured per-microbatch compute with free "
  "messages), p2p (the measured pipeline phase beyond that), all-reduce (the step's collectives: gradients, loss, "
  "norm) and optimizer (norm and AdamW); m = measured, p = predicted. Whatever the step's wall time holds beyond these "
  "(ranks starting a step apart) is the grey top of the measured bars.\n")
w("| run | nodes | pp x dp | global batch (M) | tokens/s | step measured | step predicted | error | compute m / p | "
  "bubble m / p | p2p m / p | all-reduce m / p | optimizer m / p | peak MB per stage measured | predicted | memory error | "
  "calibrations pooled | step predicted, the run's own calibration | error |")
w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in runs:
    w("| %s%s | %d | %d x %d | %d (%d) | %.0f | %.4f s | %.4f s | %+.1f%% %s | %.4f / %.4f | %.4f / %.4f | %.4f / %.4f | %.4f / %.4f | %.4f / %.4f | %s | %s | %+.1f%% %s |" % (
        r["name"], " (oversubscribed)" if r["over"] else "", r["nodes"], r["pp"], r["dp"], r["G"], r["M"], r["tok_s"],
        r["step"], r["p_step"], 100 * r["step_err"], "ok" if r["time_ok"] else "**miss**", r["compute"], r["p_compute"],
        r["m_bubble"], r["p_bubble"], r["p2p"], r["p_p2p"], r["allreduce"], r["p_allreduce"], r["optim"], r["p_optim"],
        ", ".join("%.1f" % (m / 1e6) for m in r["mem"]), ", ".join("%.1f" % (p / 1e6) for p in r["p_mem"]),
        100 * r["mem_err"], "ok" if r["mem_ok"] else "**miss**") +
      " %d | %.4f s | %+.1f%% |" % (r["npool"], r["p_step_raw"], 100 * r["step_err_raw"]))
nt = sum(r["time_ok"] for r in runs)
nr = sum(abs(r["step_err_raw"]) <= 0.20 for r in runs)
nm = sum(r["mem_ok"] for r in runs)
w(f"\nStep time within 20%: {nt} of {len(runs)} runs ({nr} with each run's own calibration alone); peak memory per rank "
  f"within 10%: {nm} of {len(runs)} runs.\n")
w("The predictions use, per kind of work, the median of the calibrations made before every run with the same ranks per "
  "core (a core per rank, or shared): they measure the same thing, and one calibration (a few milliseconds of one "
  "layer) swings by tens of percent on a busy machine while the runs' steps do not. The prediction from each run's "
  "own calibration alone is in the last columns.\n")
w("## Scaling\n")
w("Speedup = tokens/s over the 1-node run (one rank per core); efficiency = speedup / nodes. Strong scaling keeps the "
  "global batch; weak scaling multiplies it by the node count. Oversubscribed runs are left out.\n")
w("| run | scaling | nodes | speedup | efficiency | predicted speedup |")
w("|---|---|---|---|---|---|")
for r in runs:
    if not r["over"]:
        w("| %s | %s | %d | %.2f | %.0f%% | %.2f |" % (r["name"], r["scale"], r["nodes"], r["speedup"], 100 * r["eff"], r["p_speedup"]))
w("\n![speedup](speedup.png)\n\n![efficiency](efficiency.png)\n")
w("## Bitwise losses across node counts\n")
w("| pp x dp | global batch | runs | nodes | steps | identical losses |")
w("|---|---|---|---|---|---|")
for b in bitwise:
    w("| %d x %d | %d | %s | %s | %d | %s |" % (b["pp"], b["dp"], b["G"], ", ".join(b["runs"]), ", ".join(map(str, b["nodes"])),
                                              b["steps"], "yes (bitwise)" if b["same"] else "**NO**"))
if not bitwise:
    w("(no layout ran on two node counts)")
w("\n## Time per step and memory\n")
w("![time breakdown per run, measured and predicted](breakdown.png)\n\n![memory per rank per stage](memory.png)\n\n"
  "![predicted vs measured step time](predicted_vs_measured.png)\n")
open(f"{D}/report.md.tmp", "w").write("\n".join(L) + "\n")
print("scaling-report: %d runs; time within 20%%: %d, memory within 10%%: %d; bitwise: %s" % (
    len(runs), nt, nm, ", ".join("%dx%d %s" % (b["pp"], b["dp"], "identical" if b["same"] else "DIFFERENT") for b in bitwise) or "none"))
PY

gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,11"
set datafile commentschars "#"
set key top left
set grid
set xlabel "nodes"
set xtics 1
set output "$D/speedup.png"
set title "Speedup (tokens/s over 1 node) - measured (points), predicted (dashed), ideal"
set ylabel "speedup"
plot x with lines lw 2 lc rgb "gray" title "ideal", \
  "$D/speedup.dat" index 0 using 1:2 with linespoints pt 7 lc 1 title "strong, pp", \
  "$D/speedup.dat" index 1 using 1:2 with linespoints pt 7 lc 2 title "strong, dp", \
  "$D/speedup.dat" index 2 using 1:2 with linespoints pt 5 lc 3 title "weak, pp", \
  "$D/speedup.dat" index 3 using 1:2 with linespoints pt 5 lc 4 title "weak, dp", \
  "$D/speedup.dat" index 0 using 1:4 with lines dt 2 lc 1 notitle, \
  "$D/speedup.dat" index 1 using 1:4 with lines dt 2 lc 2 notitle
set output "$D/efficiency.png"
set title "Parallel efficiency (speedup / nodes)"
set key bottom left
set ylabel "efficiency"
set yrange [0:1.2]
plot 1 with lines lw 2 lc rgb "gray" title "ideal", \
  "$D/speedup.dat" index 0 using 1:3 with linespoints pt 7 lc 1 title "strong, pp", \
  "$D/speedup.dat" index 1 using 1:3 with linespoints pt 7 lc 2 title "strong, dp", \
  "$D/speedup.dat" index 2 using 1:3 with linespoints pt 5 lc 3 title "weak, pp", \
  "$D/speedup.dat" index 3 using 1:3 with linespoints pt 5 lc 4 title "weak, dp"
GP
# stacked bars drawn tallest first so each part stays visible
$PY - "$D" <<'PY'
import sys
D = sys.argv[1]
rows = [l.split() for l in open(f"{D}/breakdown.dat") if not l.startswith("#")]
with open(f"{D}/breakdown.gp", "w") as g:
    g.write(f'set terminal pngcairo size 1000,560 font "sans,10"\nset output "{D}/breakdown.png"\n'
            'set title "Time per step per run: measured (left) and predicted (right), stacked"\nset ylabel "seconds"\n'
            'set style fill solid 0.85 border -1\nset boxwidth 0.35\nset grid ytics\nset key top left\nset xtics rotate by -30\n'
            f'set xrange [-0.6:{len(rows) - 0.4}]\nset yrange [0:*]\n')
    g.write("set xtics (" + ", ".join('"%s" %d' % (r[0], i) for i, r in enumerate(rows)) + ")\n")
    # cumulative sums, drawn tallest first so that each part stays visible: measured columns 1-6
    # (compute, bubble, p2p, all-reduce, optimizer, other), predicted 7-11
    kinds = [("compute", "#3b7dd8"), ("bubble", "#f8d070"), ("p2p", "#d05050"), ("all-reduce", "#50a050"),
             ("optimizer", "#9060c0"), ("other (measured only)", "#b0b0b0")]
    cum = lambda i, first, k: sum(float(x) for x in rows[i][first:first + k])
    g.write("$M << EOD\n" + "".join("%d %s\n" % (i, " ".join(str(cum(i, 1, k)) for k in range(6, 0, -1))) for i in range(len(rows))) + "EOD\n")
    g.write("$P << EOD\n" + "".join("%d %s\n" % (i, " ".join(str(cum(i, 7, k)) for k in range(5, 0, -1))) for i in range(len(rows))) + "EOD\n")
    plots = ['$M using ($1-0.2):%d:(0.35) with boxes lc rgb "%s" title "%s"' % (2 + j, kinds[5 - j][1], kinds[5 - j][0]) for j in range(6)]
    plots += ['$P using ($1+0.2):%d:(0.35) with boxes lc rgb "%s" notitle' % (2 + j, kinds[4 - j][1]) for j in range(5)]
    g.write("plot " + ", ".join(plots) + "\n")
mem = [l.split() for l in open(f"{D}/memory.dat") if not l.startswith("#")]
with open(f"{D}/memory.gp", "w") as g:
    g.write(f'set terminal pngcairo size 1000,560 font "sans,10"\nset output "{D}/memory.png"\n'
            'set title "Peak resident memory per rank, per stage: measured (left) and predicted (right)"\nset ylabel "MB"\n'
            'set style fill solid 0.85 border -1\nset boxwidth 0.35\nset grid ytics\nset key top left\nset xtics rotate by -30\n'
            f'set xrange [-0.6:{len(mem) - 0.4}]\nset yrange [0:*]\n')
    g.write("set xtics (" + ", ".join('"%s" %d' % (r[0], i) for i, r in enumerate(mem)) + ")\n")
    g.write("$D << EOD\n" + "".join("%d %s %s\n" % (i, r[1], r[2]) for i, r in enumerate(mem)) + "EOD\n")
    g.write('plot $D using ($1-0.2):2:(0.35) with boxes lc rgb "#3b7dd8" title "measured (VmHWM)", '
            '$D using ($1+0.2):3:(0.35) with boxes lc rgb "#f0a030" title "predicted (plan)"\n')
pr = [l.split() for l in open(f"{D}/pred.dat") if not l.startswith("#")]
hi = max(max(float(r[0]), float(r[1])) for r in pr) * 1.15
with open(f"{D}/pred.gp", "w") as g:
    g.write(f'set terminal pngcairo size 760,640 font "sans,10"\nset output "{D}/predicted_vs_measured.png"\n'
            'set title "Step time: predicted vs measured"\nset xlabel "measured (s)"\nset ylabel "predicted (s)"\n'
            f'set xrange [0:{hi}]\nset yrange [0:{hi}]\nset grid\nset key top left\nset size square\n')
    g.write(f'plot x with lines lc rgb "gray" lw 2 title "predicted = measured", 1.2*x with lines dt 2 lc rgb "gray" title "+/- 20%", '
            f'0.8*x with lines dt 2 lc rgb "gray" notitle, "{D}/pred.dat" using 1:2 with points pt 7 ps 1.5 lc 1 title "runs", '
            f'"{D}/pred.dat" using 1:2:3 with labels offset 1,0.6 left font ",8" notitle\n')
PY
for g in breakdown memory pred; do gnuplot "$D/$g.gp" || { echo "scaling-report: gnuplot $g failed" >&2; exit 1; }; done
mv "$D/report.md.tmp" "$D/report.md"
say "wrote $D/report.md"
