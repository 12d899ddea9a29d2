# mixture_resume.sh - training on a 0.7/0.3 mixture of two corpora (Brown text and Python code):
# 4 steps straight = 2 steps + resume to 4, losses and final weights bitwise; metrics.jsonl step
# lines carry tokens and epochs per source (tokens adding up to the step's tokens, epochs =
# sequences / windows of each corpus, counted here from the corpus sizes); a resume with other
# weights is refused naming the mixture; one plain corpus still trains; [data] replay shares.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
lp_tiny_ini "$T/run.ini" 64 "[data]" "val =" "[run]" "dir = $T/straight" "eval_every = 0" "ckpt_every = 2"
lp_tiny_setup "$T/run.ini" 30 0.1
gzip -dc "$LP_SOURCE_DIR/inputs/corpora/python-stdlib.jsonl.gz" | head -5 > "$T/code.jsonl"
run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --val-fraction 0.1 --out "$T/code.h5" "$T/code.jsonl"
MIX="data.train=brown:$T/corpus.h5@0.7, code:$T/code.h5@0.3"
C="optim.schedule=constant"
run "$LLAMAPRO" train --config "$T/run.ini" $C "$MIX" 2> "$T/straight.log"
run "$LLAMAPRO" train --config "$T/run.ini" $C "$MIX" batch.steps=2 run.dir="$T/half" 2> /dev/null
run "$LLAMAPRO" train --config "$T/run.ini" $C "$MIX" run.dir="$T/half" 2> "$T/half2.log"
grep -q 'resuming from .*step-2.h5 at step 2' "$T/half2.log" || fail "no resume: $(cat "$T/half2.log")"
h5diff -q "$T/straight/final.h5" "$T/half/final.h5" || fail "resumed final weights differ"
expect_fail 1 "cannot resume .*data mixture differs" \
  "$LLAMAPRO" train --config "$T/run.ini" $C "data.train=brown:$T/corpus.h5@0.5, code:$T/code.h5@0.5" batch.steps=6 run.dir="$T/half"
h5dump -d /splits/train/tokens -H "$T/corpus.h5" | grep -o 'DATASPACE.*' > "$T/na" || fail "h5dump"
h5dump -d /splits/train/tokens -H "$T/code.h5" | grep -o 'DATASPACE.*' > "$T/nb" || fail "h5dump"
python3 - "$T/straight/metrics.jsonl" "$T/half/metrics.jsonl" "$T/na" "$T/nb" <<'PY' || fail "metrics"
import json, re, sys
def steps(p): return [json.loads(l) for l in open(p) if '"grad_norm"' in l]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
assert [r["step"] for r in a] == [1, 2, 3, 4] and [r["step"] for r in b] == [1, 2, 3, 4], (a, b)
assert [r["loss"] for r in a] == [r["loss"] for r in b], "resumed losses differ"
W = [(int(re.search(r"\( (\d+) \)", open(f).read()).group(1)) - 1) // 32 for f in sys.argv[3:5]]
for r in a:
    src = r["sources"]
    assert list(src) == ["brown", "code"], src
    assert src["brown"]["weight"] == 0.7 and src["code"]["weight"] == 0.3, src
    assert src["brown"]["tokens"] + src["code"]["tokens"] == r["tokens"], r
    for name, w in zip(("brown", "code"), W):
        assert abs(src[name]["epochs"] - src[name]["tokens"] / 32 / w) < 1e-5, (name, src, w)
    assert abs(src["code"]["tokens"] - 0.3 * r["tokens"]) <= 32, src
print("ok", a[-1]["sources"])
PY
run "$LLAMAPRO" train --config "$T/run.ini" batch.steps=2 run.dir="$T/plain" 2> /dev/null
! grep -q '"sources"' "$T/plain/metrics.jsonl" || fail "one corpus: sources in metrics"
# [data] replay: a share of the run from another corpus, train's weights scaled to the rest;
# a share of 0 is the plain run, bitwise
run "$LLAMAPRO" train --config "$T/run.ini" batch.steps=2 run.dir="$T/rep0" "data.replay=code:$T/code.h5@0" 2> /dev/null
cmp -s <(grep -o '"loss": [^,]*' "$T/plain/metrics.jsonl") <(grep -o '"loss": [^,]*' "$T/rep0/metrics.jsonl") \
  || fail "replay share 0 differs from no replay"
run "$LLAMAPRO" train --config "$T/run.ini" batch.steps=1 run.dir="$T/rep" "data.train=brown:$T/corpus.h5@1" \
  "data.replay=code:$T/code.h5@0.25" 2> /dev/null
grep -q '"sources": {"brown": {"weight": 0.75, "tokens": 96,.*"code": {"weight": 0.25, "tokens": 32,' "$T/rep/metrics.jsonl" \
  || fail "replay 0.25: $(cat "$T/rep/metrics.jsonl")"
expect_fail 1 "\[data\] replay: shares add up to 1.2" \
  "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/rep2" "data.replay=code:$T/code.h5@1.2"
# the report: asked against realised mixture (16 sequences: round(0.7 x 16) = 11 brown, 5 code), and a
# comparison row per run
run bash "$LP_SOURCE_DIR/jobs/report.sh" "$T/straight" "$T/plain" > /dev/null
grep -q '^| brown | 0.7000 | 0.6875 | 352 |' "$T/straight/report.md" || fail "report mixture: $(grep -A4 'Data mixture' "$T/straight/report.md")"
grep -q '^| code | 0.3000 | 0.3125 | 160 |' "$T/straight/report.md" || fail "report mixture (code)"
grep -q '^| `plain` | one corpus |' "$T/straight/report.md" || fail "report comparison: $(grep -A5 'Runs compared' "$T/straight/report.md")"
echo PASS
