# train_errors.sh - LLaMA Pro bad input exits 1 before any compute, with one line naming the
# config field, flag or file and what was expected (issue: LLaMA Pro training).
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
{ lp_model_ini "$T/exp.h5" 32 64 4 4 2 4096 32; cat <<INI
[data]
train = $T/corpus.h5
seq_len = 16
[batch]
micro_batch = 2
microbatches = 1
steps = 2
[optim]
warmup_steps = 0
[run]
dir = $T/run
INI
} > "$T/run.ini"
printf '{"text": "The quick brown fox jumps over the lazy dog, again and again and again."}\n%.0s' $(seq 40) > "$T/docs.jsonl"
run "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$T/corpus.h5" "$T/docs.jsonl"
run "$LLAMAPRO" init --config "$T/run.ini" --out "$T/base.h5" --tokenizer "$TOK" 2>/dev/null

# expansion: P must divide L, and both numbers are named
expect_fail 1 'blocks 3 does not divide the model.s 4 layers' "$LLAMAPRO" expand --in "$T/base.h5" --out "$T/x.h5" --blocks 3
[ ! -e "$T/x.h5" ] || fail "expand left an output file"
expect_fail 1 "--position: 'middle' is not one of" "$LLAMAPRO" expand --in "$T/base.h5" --out "$T/x.h5" --blocks 2 --position middle
run "$LLAMAPRO" expand --in "$T/base.h5" --out "$T/exp.h5" --blocks 2 2>/dev/null

train() { expect_fail 1 "$1" "$LLAMAPRO" train --config "$T/run.ini" "${@:2}"; [ ! -e "$T/run/final.h5" ] || fail "output left: $*"; }
train "\[method\] name: 'sideways' is not one of" method.name=sideways
train "unfreeze: 'layers.99' names no tensor" method.unfreeze=layers.99
train "unfreeze: 'bogus' names no tensor" method.unfreeze=norm,bogus
train '\[optim\] lr must be > 0' optim.lr=0
train '\[optim\] lr must be > 0' optim.lr=-1e-3
train 'seq_len 64 exceeds the model.s max_seq_len 32' data.seq_len=64
train "unknown key \[optim\] learning_rate" optim.learning_rate=3
train "override 'batch.steps': expected section.key=value" batch.steps
train 'llama-pro, but .*base.h5 has no layer marked trainable' model.path="$T/base.h5"
train 'not-there.h5' model.path="$T/not-there.h5"
# a corpus from another vocabulary: the fixture model has 96 tokens
run "$LLAMAPRO" import --from llama2c "$LP_FIXTURES/tiny-gqa.llama2c.bin" --out "$T/tiny.h5" 2>/dev/null
train 'corpus vocabulary has 4096 tokens but the model.s has 96' model.path="$T/tiny.h5" method.name=full
# the same vocabulary size from another tokenizer: the checksums differ
gzip -dc "$LP_FIXTURES/brown-60.jsonl.gz" | head -c 20000 | python3 -c 'import sys,json
for l in sys.stdin:
    try: print(json.loads(l)["text"])
    except Exception: pass' > "$T/text.txt"
for kind in bpe unigram; do
  (cd "$T" && spm_train --input=text.txt --model_prefix=$kind --model_type=$kind --vocab_size=300 \
     --bos_id=1 --eos_id=2 --unk_id=0 --minloglevel=2 >/dev/null 2>&1) || fail "spm_train $kind"
done
sed -i 's/^vocab_size = 4096/vocab_size = 300/' "$T/run.ini"
run "$LLAMAPRO" prepare --quiet --tokenizer "$T/bpe.model" --out "$T/corpus300.h5" "$T/docs.jsonl"
run "$LLAMAPRO" init --config "$T/run.ini" --out "$T/uni.h5" --tokenizer "$T/unigram.model" 2>/dev/null
train 'corpus was tokenized with tokenizer fnv1a64:[0-9a-f]+ but the model.s is fnv1a64:' \
  model.path="$T/uni.h5" method.name=full data.train="$T/corpus300.h5"
echo "train_errors: all cases passed"
