# lib.sh - shared by the script tests (sourced). Gives: $LLAMAPRO, $T (fresh temp dir), and
#   expect_fail CODE PATTERN CMD... : CMD must exit CODE with one stderr line matching PATTERN.
#   run CMD...                      : CMD must succeed.
#   lp_model_ini PATH DIM HIDDEN LAYERS HEADS KV_HEADS VOCAB MAX_SEQ : prints a [model] section
#                                     (no path line when PATH is empty)
#   lp_tiny_model [PATH [MAX_SEQ]]  : the [model] section of the tiny test model (64 wide, 4
#                                     layers, GQA 4/2, the embedded 4096-token tokenizer's vocabulary)
#   lp_tiny_ini FILE MAX_SEQ [LINE...]: a run config for it: model $T/exp.h5, corpus $T/corpus.h5 (val
#                                     split as `general`), 32-token sequences, 2 x 2 sequences a step,
#                                     4 steps, lr 1e-3, run dir $T/run1, evaluations every 2 steps;
#                                     LINEs are appended (a later key wins: "[batch]" "steps = 12")
#   lp_run_ini FILE [LINE...]       : lp_tiny_ini's run config without its [model] section (LINEs
#                                     give one: "[model]" "path = $T/m.h5")
#   lp_tiny_setup INI DOCS VAL      : $T/corpus.h5 from the first DOCS Brown documents (VAL held out),
#                                     $T/base.h5 from INI's [model], $T/exp.h5 = base + 2 new blocks
#   $TOK                            : the embedded tokenizer (inputs/tokenizer/tokenizer.model)
set -u
: "${LLAMAPRO:?run through ctest}"
T=$(mktemp -d /tmp/lpcli.XXXXXX)
trap 'rm -rf "$T"' EXIT
TOK="${LP_SOURCE_DIR:?run through ctest}/inputs/tokenizer/tokenizer.model"
fail() { echo "FAIL: $*" >&2; exit 1; }
run() { "$@" || fail "command failed ($?): $*"; }
expect_fail() {
  local code=$1 pat=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" = "$code" ] || fail "expected exit $code, got $rc: $* ; stderr: $err"
  [ "$(printf '%s\n' "$err" | grep -c .)" -le 1 ] || fail "expected one line on stderr, got: $err"
  printf '%s' "$err" | grep -q -E -- "$pat" || fail "stderr '$err' does not match '$pat'"
}
lp_model_ini() {
  echo "[model]"
  [ -z "$1" ] || echo "path = $1"
  printf '%s\n' "dim = $2" "hidden_dim = $3" "n_layers = $4" "n_heads = $5" "n_kv_heads = $6" \
    "vocab_size = $7" "max_seq_len = $8"
}
lp_tiny_model() { lp_model_ini "${1:-}" 64 128 4 4 2 4096 "${2:-64}"; }
lp_tiny_ini() {
  local f=$1 seq=$2 model; shift 2
  mapfile -t model < <(lp_tiny_model "$T/exp.h5" "$seq")
  lp_run_ini "$f" "${model[@]}" "$@"
}
lp_run_ini() {
  local f=$1; shift
  { cat <<INI
[data]
train = $T/corpus.h5
val = general:$T/corpus.h5:val
seq_len = 32
[batch]
micro_batch = 2
microbatches = 2
steps = 4
[optim]
lr = 1e-3
warmup_steps = 1
[run]
dir = $T/run1
eval_every = 2
eval_tokens = 2000
INI
    printf '%s\n' "$@"; } | lp_ini_merge > "$f"
}
# lp_ini_merge: INI on stdin with later "key = value" lines replacing earlier ones of the same
# [section] key (llamapro refuses a key set twice in one file), sections kept in first-seen order.
lp_ini_merge() {
  awk '/^\[/ { sec = $0; if (!(sec in seen)) { seen[sec] = 1; order[++ns] = sec } next }
       /=/ { k = $0; sub(/[ \t]*=.*/, "", k); id = sec SUBSEP k
             if (!(id in val)) keys[sec] = keys[sec] SUBSEP k; val[id] = $0; next }
       END { for (i = 1; i <= ns; i++) { s = order[i]; print s; n = split(keys[s], ks, SUBSEP)
               for (j = 2; j <= n; j++) print val[s SUBSEP ks[j]] } }'
}
lp_tiny_setup() {
  local ini=$1 docs=$2 val=$3
  gzip -dc "$LP_SOURCE_DIR/inputs/corpora/brown.jsonl.gz" | head -"$docs" > "$T/docs.jsonl"
  run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --val-fraction "$val" --out "$T/corpus.h5" "$T/docs.jsonl"
  run "$LLAMAPRO" init --config "$ini" --out "$T/base.h5" --tokenizer "$TOK" 2>/dev/null
  run "$LLAMAPRO" expand --in "$T/base.h5" --out "$T/exp.h5" --blocks 2 2>/dev/null
}

# lp_bad_train NP PATTERN OVERRIDES...: `train --config $T/run.ini` on NP ranks (through the caller's
# mpi function) exits 1 with one message from rank 0 matching PATTERN, no abort banner or other ranks'
# messages, and no output model.
lp_bad_train() {
  local np=$1 pat=$2 err rc; shift 2
  err=$(mpi -n "$np" "$LLAMAPRO" train --config "$T/run.ini" run.dir="$T/bad" "$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" = 1 ] || fail "expected exit 1, got $rc: $*: $err"
  [ "$(printf '%s\n' "$err" | grep -c '^llamapro:')" = 1 ] || fail "expected one message: $*: $err"
  printf '%s\n' "$err" | grep '^llamapro:' | grep -Eq -- "$pat" || fail "message does not match '$pat': $err"
  ! printf '%s\n' "$err" | grep -q 'MPI_ABORT\|\[rank [1-9]' || fail "abort banner or other ranks' messages: $err"
  [ ! -e "$T/bad/final.h5" ] || fail "output left: $*"
}
