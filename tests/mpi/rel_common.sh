# rel_common.sh - sourced by the reliability tests (issue 10): a tiny init -> expand setup
# ($T/run.ini, $T/base.h5, $T/exp.h5, $T/corpus.h5 with train and val) that trains in seconds, and
# h5corpus OUT [python statements]: a corpus written by h5py (not by llamapro) for hostile cases.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
TOK="$LP_SOURCE_DIR/inputs/tokenizer/tokenizer.model"
PY=/usr/bin/python3
MPI="$MPIEXEC -q --oversubscribe --bind-to none"
cat > "$T/run.ini" <<INI
[model]
path = $T/exp.h5
dim = 32
hidden_dim = 64
n_layers = 2
n_heads = 4
n_kv_heads = 2
vocab_size = 4096
max_seq_len = 32
[data]
train = $T/corpus.h5
seq_len = 16
[batch]
micro_batch = 2
microbatches = 1
steps = 4
[optim]
lr = 1e-3
warmup_steps = 0
[run]
dir = $T/run
ckpt_every = 2
keep_last = 2
eval_every = 0
INI
gzip -dc "$LP_SOURCE_DIR/inputs/corpora/brown.jsonl.gz" | head -30 > "$T/docs.jsonl"
run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --val-fraction 0.2 --out "$T/corpus.h5" "$T/docs.jsonl"
run "$LLAMAPRO" init --config "$T/run.ini" --out "$T/base.h5" --tokenizer "$TOK" 2>/dev/null
run "$LLAMAPRO" expand --in "$T/base.h5" --out "$T/exp.h5" --blocks 2 2>/dev/null
# h5corpus OUT TOKENS_EXPR [DTYPE]: a one-split corpus (train and val alike) written by h5py with
# its default variable-length string attributes; TOKENS_EXPR is a Python list expression.
h5corpus() {
  "$PY" - "$1" "$2" "${3:-uint16}" <<'PY' || fail "h5py could not write $1"
import sys, h5py, numpy as np
out, expr, dt = sys.argv[1], sys.argv[2], sys.argv[3]
toks = np.array(eval(expr), dtype=dt)
with h5py.File(out, "w") as f:
    f.attrs["format"] = "llamapro-corpus"      # h5py default: variable-length UTF-8 string
    f.attrs["format_version"] = np.int64(1)
    f.attrs["vocab_size"] = np.int64(4096)
    f.attrs["bos_id"] = np.int64(1)
    f.attrs["eos_id"] = np.int64(2)
    f.attrs["sources"] = "made by h5py"
    for split in ("train", "val"):
        g = f.create_group("splits/" + split)
        g["tokens"] = toks
        g["doc_offsets"] = np.array([0, len(toks)], dtype="uint64")
PY
}
