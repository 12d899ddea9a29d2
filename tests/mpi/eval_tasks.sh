# eval_tasks.sh - evaluation: the loss of one model on one corpus is the same (within 1e-6
# relative) on 1 and 2 ranks; and `eval --task arithmetic` scores exactly what greedy `generate`
# answers (scored here in python, independently of llamapro's scorer) on a model trained to
# memorise a few problems.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
{ lp_model_ini "$T/init.h5" 64 192 2 4 4 4096 64; cat <<INI
[method]
name = pretrain
[data]
train = $T/ar.h5
seq_len = 32
[batch]
micro_batch = 8
microbatches = 1
steps = 300
[optim]
lr = 1e-2
min_lr = 1e-3
warmup_steps = 10
weight_decay = 0
[run]
dir = $T/run
eval_every = 0
INI
} > "$T/ar.ini"
run "$LLAMAPRO" prepare --quiet --synthetic arithmetic --docs 48 --seed 5 --val-fraction 0.1 --tokenizer "$TOK" --out "$T/ar.h5"
run "$LLAMAPRO" init --config "$T/ar.ini" --out "$T/init.h5" --tokenizer "$TOK" 2>/dev/null
OMP_NUM_THREADS=1 run "$LLAMAPRO" train --config "$T/ar.ini" 2>/dev/null
M="$T/run/final.h5"

# loss on 1 and 2 ranks
l1=$("$LLAMAPRO" eval --model "$M" --corpus "$T/ar.h5:train" --seq-len 16 --batch 3) || fail "eval 1 rank"
l2=$("$MPIEXEC" -n 2 "$LLAMAPRO" eval --model "$M" --corpus "$T/ar.h5:train" --seq-len 16 --batch 3) || fail "eval 2 ranks"
python3 -c 'import sys, math
a=float(sys.argv[1].split()[1]); b=float(sys.argv[2].split()[1])
assert sys.argv[1].split()[5]==sys.argv[2].split()[5], "token counts differ"
assert int(sys.argv[1].split()[5]) >= 16 * 3, "fewer windows than one batch per rank"
assert math.isfinite(a) and a > 0, a
assert abs(a-b) <= 1e-6*abs(a), (a, b)' "$l1" "$l2" || fail "1-rank '$l1' vs 2-rank '$l2'"

# arithmetic accuracy: llamapro's scorer vs generate + python
acc=$("$LLAMAPRO" eval --task arithmetic --model "$M" --corpus "$T/ar.h5:train") || fail "eval --task"
acc2=$("$MPIEXEC" -n 2 "$LLAMAPRO" eval --task arithmetic --model "$M" --corpus "$T/ar.h5:train") || fail "eval --task, 2 ranks"
[ "$acc" = "$acc2" ] || fail "arithmetic accuracy differs between 1 and 2 ranks: '$acc' vs '$acc2'"
h5dump -d /splits/train/tokens -y -w 0 "$T/ar.h5" > "$T/ids.txt"
h5dump -d /splits/train/doc_offsets -y -w 0 "$T/ar.h5" > "$T/offs.txt"
python3 - "$T" "$LLAMAPRO" "$M" "$acc" "$TOK" <<'PY' || fail "independent scoring disagrees"
import subprocess, sys, re
T, exe, model, acc, tok = sys.argv[1:6]
def data(path):  # the numbers of an h5dump DATA block
    body = open(path).read().split("DATA {", 1)[1].split("}", 1)[0]
    return [int(x) for x in body.replace(",", " ").split()]
ids, offs = data(T + "/ids.txt"), data(T + "/offs.txt")
correct = 0
n = len(offs) - 1
for d in range(n):
    doc = " ".join(map(str, ids[offs[d] + 1: offs[d + 1]]))
    text = subprocess.run(["spm_decode", "--model", tok, "--input_format=id"], input=doc + "\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    m = re.fullmatch(r"(Q: \S+=\? A:) (-?\d+)", text)
    assert m, text
    out = subprocess.run([exe, "generate", "--model", model, "--prompt", m.group(1), "--temperature", "0",
                          "--tokens", str(len(m.group(2)) + 2)], capture_output=True, text=True, check=True).stdout
    got = re.match(r"\s*(-?\d*)", out[len(m.group(1)):]).group(1)
    correct += got == m.group(2)
want = "accuracy %.4f problems %d" % (correct / n, n)
print("independent:", want, "| llamapro:", acc)
assert acc == want, (acc, want)
assert correct > 0, "the memorising model answered nothing right: the test cannot tell a scorer bug"
PY
echo "eval_tasks: passed ($acc)"
