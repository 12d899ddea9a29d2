#!/usr/bin/env bash
# report.sh RUN_DIR [--compare OTHER_RUN]... [--label L0,L1,...] [--tolerance PCT] [OTHER_RUN...] - write RUN_DIR/report.md and its plots (loss.png, tokens_per_s.png) from what a
# LLaMA Pro job left in RUN_DIR: metrics.jsonl (training and evaluation lines), eval/*.txt (the
# job's `llamapro eval` of the base and final models), log/train.log, steps.tsv (step and attempt
# times), ckpt/, hf/, job.env. Called by jobs/llama-pro-*.slurm; can be run again by hand.
# Needs python3 (parsing) and gnuplot (plots; Debian gnuplot-nox), both in slurm/env.sh's packages.
# Files are written under temporary names and renamed, so a report is never half written.
# A run on a mixture ([data] train with weights, or [data] replay) gets a section with the realised
# mixture against the asked one. OTHER_RUN directories (e.g. the same job with another replay
# share, or the fp32 run of a bf16 job: --compare) add a comparison: one row each in a loss table
# (general and domain val loss, base and final), each val set's final loss against RUN_DIR's as a
# relative difference (within --tolerance PCT, default 1, or not), and every run's loss curves
# (val and train) in one figure, compare.png. --label names RUN_DIR and the other runs in order
# (e.g. --label bf16,fp32) in the table, the lines and the figure; default: directory and mixture.
# A full disk is one line and exit 1: no report is written rather than one without its plots.
set -euo pipefail
die() { echo "report.sh: $*" >&2; exit 1; }
usage="usage: report.sh RUN_DIR [--compare OTHER_RUN]... [--label L0,L1,...] [--tolerance PCT] [OTHER_RUN...]"
RUN=${1:?$usage}
shift
OTHERS=() LABELS="" TOL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --compare) [ $# -ge 2 ] || die "--compare: expected a run directory"; OTHERS+=("$2"); shift 2 ;;
    --label) [ $# -ge 2 ] || die "--label: expected labels, e.g. bf16,fp32"; LABELS=$2; shift 2 ;;
    --tolerance) [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--tolerance: expected a percentage, e.g. 1"; TOL=$2; shift 2 ;;
    -*) die "unknown option '$1' ($usage)" ;;
    *) OTHERS+=("$1"); shift ;;
  esac
done
for o in "${OTHERS[@]+"${OTHERS[@]}"}"; do [ -f "$o/metrics.jsonl" ] || die "$o/metrics.jsonl not found"; done
if [ -n "$LABELS" ]; then
  n=$(( $(tr -cd , <<< "$LABELS" | wc -c) + 1 ))
  [ "$n" = $(( ${#OTHERS[@]} + 1 )) ] ||
    die "--label: $n label(s) for $(( ${#OTHERS[@]} + 1 )) run(s) (RUN_DIR and each --compare, in order)"
fi
[ -d "$RUN" ] || die "$RUN is not a directory"
[ -f "$RUN/metrics.jsonl" ] || die "$RUN/metrics.jsonl not found (has training run?)"
command -v python3 >/dev/null || die "python3 not found (apt-get install python3)"
TMP=$(mktemp -d "$RUN/.report.XXXXXX") || die "$RUN: cannot create a temporary directory for the report"
trap 'rm -rf "$TMP"' EXIT
# A write that failed: a full disk (or quota) is named as such - a report is never written without
# its plots because the disk was full; anything else is named with what was being written.
write_failed() {
  if ! head -c 1048576 /dev/zero > "$TMP/.room" 2>/dev/null; then
    rm -f "$TMP/.room"
    die "$RUN: no space left on its filesystem (or quota exceeded) while writing $1: nothing written"
  fi
  die "$RUN: writing $1 failed${2:+: $2}"
}
# a complete PNG ends with its IEND chunk
png_ok() { [ "$(tail -c 8 "$1" 2>/dev/null | head -c 4)" = IEND ]; }

# 1. numbers, plot data and the markdown (without the plot lines) from python3
python3 - "$RUN" "$TMP" "${LP_ATTEMPT_START:-}" "$LABELS" "$TOL" "${OTHERS[@]+"${OTHERS[@]}"}" <<'PY' || exit 1
import errno, glob, json, os, re, statistics, sys, time
run, tmp, attempt_start, labels, tol, others = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6:]
labels = [l.strip() for l in labels.split(",")] if labels else []

def one_line(kind, e, tb):
    # a failed write (full disk) or read: one line, not a traceback
    if issubclass(kind, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        print(f"report.sh: {run}: no space left on its filesystem (or quota exceeded) while writing "
              f"{os.path.basename(e.filename or 'the report')}: nothing written", file=sys.stderr)
    elif issubclass(kind, OSError):
        print(f"report.sh: {run}: {e.strerror or e} ({e.filename or 'the report'})", file=sys.stderr)
    else:
        sys.__excepthook__(kind, e, tb)
sys.excepthook = one_line

def read_kv(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                d[k] = v
    return d

job = read_kv(os.path.join(run, "job.env"))
# metrics.jsonl is appended to by every attempt: a resumed run repeats the steps after its last
# checkpoint, so the last line for each (kind, step) is the one that counts
steps, evals, bad = {}, {}, 0
for line in open(os.path.join(run, "metrics.jsonl")):
    try:
        r = json.loads(line)
    except ValueError:
        bad += 1   # a line cut short by a killed run
        continue
    if "eval" in r:
        evals[(r["eval"], r["step"])] = r
    elif "loss" in r and "step" in r:
        steps[r["step"]] = r
names = []
for (n, _s) in evals:
    if n not in names:
        names.append(n)
domain = next((n for n in names if n != "general"), None)

def eval_file(which, name):
    p = os.path.join(run, "eval", f"{which}-{name}.txt")
    if not os.path.exists(p):
        return None
    m = re.match(r"loss (\S+) ppl (\S+) tokens (\d+)", open(p).read())
    return (float(m.group(1)), float(m.group(2)), int(m.group(3))) if m else None

def fmt(x, f="%.4f"):
    return f % x if x is not None else "n/a"

out = []
title = job.get("job", os.path.basename(os.path.abspath(run)))
out.append(f"# {title}: LLaMA Pro run report\n")
out.append(f"Run directory `{os.path.abspath(run)}`, written {time.strftime('%Y-%m-%d %H:%M:%S %Z')}.")
if job:
    slurm = f", Slurm job {job['slurm_job']}, restarts {job.get('restarts', '0')}" if job.get("slurm_job") else ", outside Slurm"
    out.append(f"Config `{job.get('config')}`, base model `{job.get('base')}`; {job.get('ranks')} MPI ranks x "
               f"{job.get('threads')} threads ({job.get('launcher')}), pp = {job.get('pp')}{slurm}.")
out.append("")

# losses: the job's own `llamapro eval` of base and final; metrics.jsonl's first and last eval otherwise
out.append("## Loss (mean cross-entropy, nats/token, on the val splits)\n")
out.append("| split | base | final | change | base ppl | final ppl | tokens |")
out.append("| --- | --- | --- | --- | --- | --- | --- |")
summary = {}
for n in names or ["general"]:
    b, f = eval_file("base", n), eval_file("final", n)
    src = "llamapro eval"
    if b is None or f is None:
        ev = sorted((s, r) for (m, s), r in evals.items() if m == n)
        if ev:
            src = "metrics.jsonl (first and last evaluation)"
            b = b or (ev[0][1]["loss"], ev[0][1]["ppl"], ev[0][1]["tokens"])
            f = f or (ev[-1][1]["loss"], ev[-1][1]["ppl"], ev[-1][1]["tokens"])
    if b and f:
        summary[n] = (b[0], f[0])
        out.append(f"| {n}{' (domain)' if n == domain else ''} | {b[0]:.4f} | {f[0]:.4f} | {f[0] - b[0]:+.4f} | "
                   f"{b[1]:.2f} | {f[1]:.2f} | {f[2]} |")
    else:
        out.append(f"| {n} | n/a | n/a | | | | |")
out.append("\nBase = the model before expansion (`llamapro eval` on it); the expanded model computes the same "
           "function, so it is also step 0 of training. Numbers from `llamapro eval` when the job wrote "
           "them (eval/), else from the evaluations in metrics.jsonl.\n")
acc = {}
for which in ("base", "final"):
    p = os.path.join(run, "eval", f"{which}-arithmetic.txt")
    if os.path.exists(p):
        acc[which] = open(p).read().strip()
if acc:
    out.append("Arithmetic accuracy (`llamapro eval --task arithmetic`): " +
               "; ".join(f"{k}: {v}" for k, v in acc.items()) + "\n")

# the data mixture: asked weights against the tokens each source gave (the last step line)
def mixture(rows_by_step):
    last = rows_by_step[max(rows_by_step)] if rows_by_step else {}
    return last.get("sources")
mix = mixture(steps)
if mix:
    total = sum(v["tokens"] for v in mix.values())
    out.append("## Data mixture (asked against realised)\n")
    out.append("| source | asked | realised | tokens | epochs |")
    out.append("| --- | --- | --- | --- | --- |")
    for n, v in mix.items():
        out.append(f"| {n} | {v['weight']:.4f} | {v['tokens'] / total:.4f} | {v['tokens']} | {v['epochs']:.3f} |")
    out.append("\nRealised = the source's share of all tokens trained on; epochs = passes over the source's "
               "train split (a source smaller than its share repeats, in a fresh order each epoch).\n")

# other runs of the same job (e.g. another replay share): one row each
def run_rows(d):
    st, ev = {}, {}
    for line in open(os.path.join(d, "metrics.jsonl")):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if "eval" in r:
            ev[(r["eval"], r["step"])] = r
        elif "loss" in r and "step" in r:
            st[r["step"]] = r
    return st, ev

def run_mixture(st):
    m = mixture(st)
    return ", ".join(f"{n} {v['weight']:.2f}" for n, v in m.items()) if m else "one corpus"

def run_label(st, i, d):   # --label's, else the directory's name and the mixture
    return labels[i] if labels else f"{os.path.basename(os.path.abspath(d))} ({run_mixture(st)})"

if others:
    out.append("## Runs compared\n")
    cols = [n for n in names] or ["general"]
    out.append("| run | mixture | " + " | ".join(f"{n} base | {n} final | {n} change" for n in cols) + " |")
    out.append("| --- | --- | " + " | ".join("--- | --- | ---" for _ in cols) + " |")
    finals = {}
    for i, d in enumerate([run] + others):
        st, ev = run_rows(d)
        cells = []
        for n in cols:
            pts = sorted((s, r["loss"]) for (m, s), r in ev.items() if m == n)
            b = f = None
            for which in ("base", "final"):
                p = os.path.join(d, "eval", f"{which}-{n}.txt")
                mm = re.match(r"loss (\S+)", open(p).read()) if os.path.exists(p) else None
                if mm and which == "base": b = float(mm.group(1))
                if mm and which == "final": f = float(mm.group(1))
            b = b if b is not None else (pts[0][1] if pts else None)
            f = f if f is not None else (pts[-1][1] if pts else None)
            cells.append(f"{fmt(b)} | {fmt(f)} | " + (f"{f - b:+.4f}" if b is not None and f is not None else "n/a"))
            finals[(i, n)] = f
            with open(os.path.join(tmp, f"cmp-{i}-{n}.dat"), "w") as fh:
                fh.writelines(f"{s} {l}\n" for s, l in pts)
        with open(os.path.join(tmp, f"cmp-{i}-train.dat"), "w") as fh:
            fh.writelines(f"{s} {st[s]['loss']}\n" for s in sorted(st))
        name = labels[i] if labels else f"`{os.path.basename(os.path.abspath(d))}`"
        out.append(f"| {name} | {run_mixture(st)} | " + " | ".join(cells) + " |")
        with open(os.path.join(tmp, f"cmp-{i}.label"), "w") as fh:
            fh.write(run_label(st, i, d))
    out.append("\nBase and final from each run's `llamapro eval` (eval/), else its first and last evaluation; "
               "curves of every run in compare.png.\n")
    # each val set's final loss of this run against each other run's: relative difference
    me = labels[0] if labels else os.path.basename(os.path.abspath(run))
    for j, d in enumerate(others, 1):
        them = labels[j] if labels else os.path.basename(os.path.abspath(d))
        for n in cols:
            a, b = finals.get((0, n)), finals.get((j, n))
            if a is None or b is None:
                out.append(f"- {n} final val loss: {me} {fmt(a)}, {them} {fmt(b)}: no relative difference")
                continue
            rel = 100 * (a - b) / b
            out.append(f"- {n} final val loss: {me} {a:.4f}, {them} {b:.4f}: relative difference {rel:+.2f}% "
                       f"({'within' if abs(rel) <= tol else 'NOT within'} {tol:g}%)")
    out.append("")
with open(os.path.join(tmp, "compare"), "w") as fh:
    fh.write(" ".join(str(i) for i in range(len(others) + 1)) if others else "")

# training
out.append("## Training\n")
rows = sorted(steps.values(), key=lambda r: r["step"])
main = rows
if main:
    last = max(main, key=lambda r: r["step"])
    tps = [r["tokens_per_s"] for r in main if r["step"] > 1 and "tokens_per_s" in r] or \
          [r["tokens_per_s"] for r in main if "tokens_per_s" in r]
    mfu = [r["mfu"] for r in main if r["step"] > 1 and "mfu" in r] or [r["mfu"] for r in main if "mfu" in r]
    out.append(f"- steps: {last['step']}, tokens seen: {last.get('tokens', 'n/a')}, last training loss {last['loss']:.4f}")
    if tps:
        out.append(f"- tokens/s: median {statistics.median(tps):.0f} (min {min(tps):.0f}, max {max(tps):.0f}; "
                   f"step 1 left out: it includes warm-up)")
    if mfu:
        out.append(f"- MFU (against the sgemm rate measured in the run): mean {100 * statistics.mean(mfu):.1f}%")
else:
    out.append("- no training steps in metrics.jsonl")
if bad:
    out.append(f"- {bad} unreadable line(s) in metrics.jsonl skipped (cut short by a killed run)")
log = os.path.join(run, "log", "train.log")
logtext = open(log, errors="replace").read() if os.path.exists(log) else ""
# the pipeline's partitioner prints "partition (...)" and one "  stage N: layers a-b ..." line each
part = [l.rstrip() for l in logtext.splitlines() if re.search(r"partition|^\s*stage \d+: layers", l, re.I)]
if part:
    out.append("- partition (from the training log):")
    out.append("")
    out.append("```")
    out.extend(dict.fromkeys(part[-8:]))   # the last attempt's lines, without repeats
    out.append("```")
    out.append("")
else:
    out.append("- partition: the training log prints none" +
               (" (pp = 1: every rank holds all layers)" if job.get("pp", "1") == "1" else ""))
ckpts = sorted(glob.glob(os.path.join(run, "ckpt", "step-*.h5")), key=lambda p: int(re.sub(r"\D", "", os.path.basename(p)) or 0))
# llamapro prints "checkpoint: DIR/step-N.h5 (...)" per checkpoint written
written = len(re.findall(r"^checkpoint: .*step-\d+\.h5", logtext, re.M))
out.append(f"- checkpoints: {written} written (training log), {len(ckpts)} kept in ckpt/" +
           (f" ({', '.join(os.path.basename(c) for c in ckpts)})" if ckpts else ""))
resumes = len(re.findall(r"^train: resuming from", logtext, re.M))
if resumes:
    out.append(f"- resumed from a checkpoint: {resumes} time(s) according to the training log")

# wall time: every attempt of the job is a line of steps.tsv, plus this one
tsv = os.path.join(run, "steps.tsv")
step_rows, attempts = [], []
if os.path.exists(tsv):
    for line in open(tsv):
        f = line.rstrip("\n").split("\t")
        if f[0] == "attempt" and len(f) >= 5:
            attempts.append((int(f[1]), float(f[2]), f[3]))
        elif len(f) >= 5:
            step_rows.append(f)
wall = sum(a[1] for a in attempts)
if attempt_start:
    wall += time.time() - float(attempt_start)
n_att = len(attempts) + (1 if attempt_start else 0)
out.append(f"- wall time: {wall / 60:.1f} min over {n_att} attempt(s) of the job (queue waits not included)")
if step_rows:
    out.append("\n| step | attempt | exit | seconds |\n| --- | --- | --- | --- |")
    for f in step_rows:
        out.append(f"| {f[0]} | {f[3]} | {f[1]} | {float(f[2]):.1f} |")
out.append("")

# plot data: one file per evaluation set and per stage
for n in names:
    with open(os.path.join(tmp, f"eval-{n}.dat"), "w") as fh:
        for (m, s), r in sorted(evals.items(), key=lambda kv: kv[0][1]):
            if m == n:
                fh.write(f"{s} {r['loss']}\n")
with open(os.path.join(tmp, "names"), "w") as fh:
    fh.write(" ".join(names))
with open(os.path.join(tmp, "train.dat"), "w") as fh:
    for r in rows:
        fh.write(f"{r['step']} {r['loss']} {r.get('tokens_per_s', 0)}\n")
# pipeline runs add per-stage seconds per step ("stage_fwd_s": [s0, s1, ...], likewise bin, bwt,
# wait, opt, idle): a stage's own throughput is the step's tokens over its busy (non-wait,
# non-idle) time - what it would reach if it never waited for its neighbours
n_stages = max((len(v) for r in rows for k, v in r.items() if k.startswith("stage_") and isinstance(v, list)), default=0)
for st in range(n_stages if n_stages > 1 else 0):
    with open(os.path.join(tmp, f"stage-{st}.dat"), "w") as fh:
        for r in rows:
            busy = sum(v[st] for k, v in r.items() if k.startswith("stage_") and k.endswith("_s")
                       and isinstance(v, list) and len(v) > st and not any(w in k for w in ("wait", "idle")))
            if busy > 0 and r["step"] > 0:
                fh.write(f"{r['step']} {r['tokens'] / r['step'] / busy}\n")
if n_stages > 1:
    out.insert(out.index("## Training\n") + 1, f"- pipeline: {n_stages} stages; per-stage busy throughput in the tokens/s plot")
with open(os.path.join(tmp, "stages"), "w") as fh:
    fh.write(" ".join(str(i) for i in range(n_stages if n_stages > 1 else 0)))

# export
hf = os.path.join(run, "hf")
out.append("## Hugging Face export\n")
if os.path.isdir(hf):
    files = sorted(os.listdir(hf))
    size = sum(os.path.getsize(os.path.join(hf, x)) for x in files)
    out.append(f"`{os.path.abspath(hf)}`: {', '.join(files)} ({size / 1e6:.1f} MB)\n")
else:  # only when the report is written again (report.sh RUN_DIR) for a run still in progress
    out.append("The job has not reached its export step yet.\n")
open(os.path.join(tmp, "report.md"), "w").write("\n".join(out))
PY

# 2. plots with gnuplot (pngcairo, or the libgd png terminal when cairo is missing)
plots=""
if command -v gnuplot >/dev/null; then
  term="pngcairo size 900,500 font ',10'"
  gnuplot -e "set terminal pngcairo" 2>/dev/null || term="png size 900,500"
  names=$(cat "$TMP/names"); stages=$(cat "$TMP/stages")   # stages: only for pp > 1
  {
    echo "set terminal $term"
    echo "set grid; set key top right; set xlabel 'step'"
    echo "set output '$TMP/loss.png'"
    echo "set title 'Loss over training steps (val: llamapro evaluations; train: each step)'"
    echo "set ylabel 'loss (nats/token)'"
    printf "plot "
    sep=""
    for n in $names; do printf "%s'%s' using 1:2 with linespoints lw 2 title 'val %s'" "$sep" "$TMP/eval-$n.dat" "$n"; sep=", "; done
    printf "%s'%s' using 1:2 with lines lc rgb '#bbbbbb' title 'train (each step)'" "$sep" "$TMP/train.dat"
    echo
    echo "set output '$TMP/tokens_per_s.png'"
    echo "set title 'Training throughput'"
    echo "set ylabel 'tokens/s'; set yrange [0:*]"
    printf "plot "
    sep=""
    printf "'%s' using 1:3 with lines lw 2 title 'tokens/s (whole step)'" "$TMP/train.dat"
    for s in $stages; do printf ", '%s' using 1:2 with lines title 'stage %s, busy time only'" "$TMP/stage-$s.dat" "$s"; done
    echo
    if [ -s "$TMP/compare" ]; then
      echo "set output '$TMP/compare.png'"
      echo "set title 'Loss of the runs compared (val: evaluations; train: each step)'"
      echo "set ylabel 'loss (nats/token)'; set yrange [*:*]"
      printf "plot "
      sep=""
      for i in $(cat "$TMP/compare"); do
        for n in $names; do
          printf "%s'%s' using 1:2 with linespoints lw 2 dt %d title '%s: val %s'" "$sep" "$TMP/cmp-$i-$n.dat" \
            $((i + 1)) "$(tr -d "'" < "$TMP/cmp-$i.label")" "$n"; sep=", "
        done
        printf "%s'%s' using 1:2 with lines lw 1 dt %d title '%s: train'" "$sep" "$TMP/cmp-$i-train.dat" \
          $((i + 1)) "$(tr -d "'" < "$TMP/cmp-$i.label")"
      done
      echo
    fi
  } > "$TMP/plot.gp" || write_failed "the plot script"
  if [ -s "$TMP/train.dat" ] && gnuplot "$TMP/plot.gp" 2> "$TMP/gnuplot.err"; then
    plots="loss.png tokens_per_s.png"
    [ ! -s "$TMP/compare" ] || plots="$plots compare.png"
    for p in $plots; do png_ok "$TMP/$p" || write_failed "$p" "gnuplot left it incomplete"; done
  else
    # a plot that could not be written because the disk is full ends here (write_failed)
    [ ! -s "$TMP/train.dat" ] || head -c 1048576 /dev/zero > "$TMP/.room" 2>/dev/null || write_failed "the plots"
    rm -f "$TMP/.room"
    echo "report.sh: gnuplot failed, report without plots: $(head -3 "$TMP/gnuplot.err" 2>/dev/null)" >&2
  fi
else
  echo "report.sh: gnuplot not found (apt-get install gnuplot-nox): report without plots" >&2
fi
{
  cat "$TMP/report.md"
  if [ -n "$plots" ]; then
    printf '\n## Plots\n\n![loss over steps](loss.png)\n\n![tokens per second](tokens_per_s.png)\n'
    [ ! -s "$TMP/compare" ] || printf '\n![loss of the runs compared](compare.png)\n'
  fi
} > "$TMP/report.md.full" || write_failed report.md
for p in $plots; do mv "$TMP/$p" "$RUN/$p" || die "$RUN: cannot rename $p into place"; done
mv "$TMP/report.md.full" "$RUN/report.md" || die "$RUN: cannot rename report.md into place"
