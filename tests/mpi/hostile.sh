# hostile.sh - hostile inputs, generated (issue 10): truncations of every file kind at sampled
# offsets, flipped bytes, mutated run configs and bad flags of every command. Each case must end
# with exit 1 and exactly one "llamapro:" line on stderr naming the problem (or, where the damage can
# be harmless - a flipped byte in weight data, a truncated config that is still valid - exit 0), never
# exit 2, a signal, a hang, sanitizer output or an HDF5/MPI banner, and must leave no output or
# .partial file. Prints the counts; fails if any case misbehaved. LLAMAPRO may name an ASan build;
# HOSTILE_WIDE=1 samples more offsets and every value for every key (about 480 cases, ~4 min).
source "${LP_SOURCE_DIR:?run through ctest}/tests/mpi/rel_common.sh" || exit 1
O="$T/out"; mkdir -p "$O"
tried=0; good=0; zero=0; : > "$T/bad.txt"
# hcase MODE NAME CMD...: MODE 1 = must fail with exit 1; 01 = exit 0 is acceptable too
hcase() {
  local mode=$1 name=$2 rc; shift 2
  rm -rf "$O"; mkdir -p "$O"
  timeout -s KILL 60 "$@" > /dev/null 2> "$T/err" < /dev/null; rc=$?
  tried=$((tried + 1))
  local nerr junk left
  nerr=$(grep -c '^llamapro:' "$T/err")
  junk=$(grep -c -E 'HDF5-DIAG|internal error|Segmentation|AddressSanitizer|LeakSanitizer|runtime error|MPI_ABORT|mpirun|mpiexec|Abort|core dumped' "$T/err")
  left=$(ls -A "$O")
  if { [ $rc = 1 ] && [ "$nerr" = 1 ] && [ "$junk" = 0 ] && [ -z "$left" ]; } ||
     { [ "$mode" = 01 ] && [ $rc = 0 ] && [ "$junk" = 0 ]; }; then
    good=$((good + 1)); [ $rc = 0 ] && zero=$((zero + 1))
  else
    printf '%s: exit %s, %s error lines, %s junk lines, left [%s]: %s\n' "$name" $rc "$nerr" "$junk" "$left" \
      "$(grep -m1 -E 'llamapro:|error|Sanitizer' "$T/err" | cut -c1-200)" >> "$T/bad.txt"
  fi
}
offsets() { # sampled truncation offsets of a file of $1 bytes
  local s=$1; printf '%s\n' 0 1 8 512 $((s / 8)) $((s / 4)) $((s / 2)) $((3 * s / 4)) $((s - 1)) \
    ${HOSTILE_WIDE:+7 64 2048 $((s / 3)) $((5 * s / 8)) $((7 * s / 8)) $((s - 1024)) $((s - 64))} |
    awk -v s=$s '$1 >= 0 && $1 < s' | sort -n -u
}
cut_to() { head -c "$2" "$1" > "$3"; }
flip_at() { cp "$1" "$3"; printf "$(printf '\\%03o' $(( ($(od -An -tu1 -j "$2" -N1 "$1") ^ 0xA5) )))" | dd of="$3" bs=1 seek="$2" conv=notrunc 2>/dev/null; }
size() { stat -c %s "$1"; }

# inputs: a checkpoint, an HF directory, a llama2c file, a gzipped JSONL
run "$LLAMAPRO" train --config "$T/run.ini" batch.steps=2 2>/dev/null
CK="$T/run/ckpt/step-2.h5"
rm -rf "$T/run/final.h5"
cp -r "$LP_FIXTURES/tiny-gqa-hf" "$T/hf"
L2C="$LP_FIXTURES/tiny-gqa.llama2c.bin"
gzip -c "$T/docs.jsonl" > "$T/docs.jsonl.gz"
SHARD="$T/hf/model-00001-of-00002.safetensors"

# ---- truncations ---------------------------------------------------------------------------------
for o in $(offsets $(size "$T/exp.h5")); do cut_to "$T/exp.h5" $o "$T/t.h5"
  hcase 1 "model truncated at $o: expand" "$LLAMAPRO" expand --in "$T/t.h5" --out "$O/e.h5" --blocks 2; done
for o in $(offsets $(size "$T/corpus.h5")); do cut_to "$T/corpus.h5" $o "$T/t.h5"
  hcase 1 "corpus truncated at $o: eval" "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/t.h5:val" --seq-len 16; done
for o in $(offsets $(size "$CK")); do cut_to "$CK" $o "$T/t.h5"
  hcase 1 "checkpoint truncated at $o: info --verify" "$LLAMAPRO" info --verify "$T/t.h5"; done
for o in $(offsets $(size "$SHARD")); do rm -rf "$T/hft"; cp -r "$T/hf" "$T/hft"; cut_to "$SHARD" $o "$T/hft/model-00001-of-00002.safetensors"
  hcase 1 "safetensors truncated at $o: import" "$LLAMAPRO" import --from hf "$T/hft" --out "$O/i.h5"; done
for f in config.json model.safetensors.index.json; do
  for o in 0 1 10 $(( $(size "$T/hf/$f") / 2 )) $(( $(size "$T/hf/$f") - 2 )); do rm -rf "$T/hft"; cp -r "$T/hf" "$T/hft"; cut_to "$T/hf/$f" $o "$T/hft/$f"
    hcase 1 "$f truncated at $o: import" "$LLAMAPRO" import --from hf "$T/hft" --out "$O/i.h5"; done; done
for o in $(offsets $(size "$L2C")); do cut_to "$L2C" $o "$T/t.bin"
  hcase 1 "llama2c truncated at $o: import" "$LLAMAPRO" import --from llama2c "$T/t.bin" --out "$O/i.h5"; done
for o in $(offsets $(size "$TOK")); do cut_to "$TOK" $o "$T/t.model"
  hcase 01 "tokenizer.model truncated at $o: prepare" "$LLAMAPRO" prepare --quiet --tokenizer "$T/t.model" --out "$O/c.h5" "$T/docs.jsonl"; done
for o in $(offsets $(size "$T/docs.jsonl.gz")); do cut_to "$T/docs.jsonl.gz" $o "$T/t.jsonl.gz"
  hcase 1 "jsonl.gz truncated at $o: prepare" "$LLAMAPRO" prepare --quiet --tokenizer "$TOK" --out "$O/c.h5" "$T/t.jsonl.gz"; done
for o in $(offsets $(size "$T/run.ini")) 100 150 200 250; do cut_to "$T/run.ini" $o "$T/t.ini"
  hcase 01 "run.ini truncated at $o: train" "$LLAMAPRO" train --config "$T/t.ini" run.dir="$O/run" batch.steps=1; done

# ---- flipped bytes (harmless flips in weight data may import or verify fine: exit 0 allowed) ------
for f in exp.h5 corpus.h5; do s=$(size "$T/$f")
  for o in 0 8 100 400 1000 3000 $((s / 3)) $((s / 2)) $((s - 500)) $((s - 8)); do flip_at "$T/$f" $o "$T/t.h5"
    if [ $f = exp.h5 ]; then hcase 01 "model byte $o flipped: info --verify" "$LLAMAPRO" info --verify "$T/t.h5"
    else hcase 01 "corpus byte $o flipped: eval" "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/t.h5:val" --seq-len 16; fi
  done; done
s=$(size "$SHARD")
for o in 0 3 7 8 9 20 60 100 200 $((s / 2)); do rm -rf "$T/hft"; cp -r "$T/hf" "$T/hft"; flip_at "$SHARD" $o "$T/hft/model-00001-of-00002.safetensors"
  hcase 01 "safetensors byte $o flipped: import" "$LLAMAPRO" import --from hf "$T/hft" --out "$O/i.h5"; done
for o in 0 1 4 8 12 16 20 24 27; do flip_at "$L2C" $o "$T/t.bin"
  hcase 01 "llama2c header byte $o flipped: import" "$LLAMAPRO" import --from llama2c "$T/t.bin" --out "$O/i.h5"; done

# ---- run configs: every key with hostile values (command-line overrides and INI lines) ----------
keys="model.dim model.vocab_size model.norm_eps data.seq_len batch.micro_batch batch.microbatches batch.steps
  optim.lr optim.min_lr optim.warmup_steps optim.beta1 optim.beta2 optim.eps optim.weight_decay optim.clip
  parallel.pp run.seed run.eval_every run.eval_tokens run.ckpt_every run.keep_last run.max_minutes"
# two of seven hostile values per key, rotating, so that every value meets several keys
vals=("" abc -1 1e999 nan 99999999999999999999 "1 2"); i=0
for k in $keys; do
  sel=("${vals[$((i % 7))]}" "${vals[$(((i + 3) % 7))]}"); [ -z "${HOSTILE_WIDE:-}" ] || sel=("${vals[@]}")
  for v in "${sel[@]}"; do
    hcase 01 "override $k='$v'" "$LLAMAPRO" train --config "$T/run.ini" run.dir="$O/run" batch.steps=1 "$k=$v"
  done; i=$((i + 1)); done
for k in method.name optim.schedule parallel.schedule run.resume data.train data.val parallel.partition method.unfreeze; do
  for v in bogus "x:y:z"; do
    hcase 01 "override $k='$v'" "$LLAMAPRO" train --config "$T/run.ini" run.dir="$O/run" batch.steps=1 "$k=$v"
  done; done
for line in "lr = 1e-3" "[optim" "= 3" "garbage" "[nosuch]" "key_without_section = 1" "  indented = 1" "lr : 1e-3" \
            "path = $T/exp.h5" "[model]" "$(printf 'x%.0s' $(seq 300)) = 1"; do
  { cat "$T/run.ini"; echo "$line"; } > "$T/m.ini"
  hcase 01 "ini line '${line:0:30}'" "$LLAMAPRO" train --config "$T/m.ini" run.dir="$O/run" batch.steps=1
done
hcase 1 "override without dot" "$LLAMAPRO" train --config "$T/run.ini" steps=3
hcase 1 "override without =" "$LLAMAPRO" train --config "$T/run.ini" batch.steps
hcase 1 "missing config" "$LLAMAPRO" train --config "$T/none.ini"
hcase 1 "config is a directory" "$LLAMAPRO" train --config "$T"

# ---- flags of every command ----------------------------------------------------------------------
M="$T/exp.h5"
while IFS= read -r line; do
  [ -n "$line" ] || continue
  eval "set -- $line"
  hcase 1 "flags: $*" "$LLAMAPRO" "$@"
done <<FLAGS
generate --model $M --prompt-ids 1,2 --temperature nan
generate --model $M --prompt-ids 1,2 --temperature -1
generate --model $M --prompt-ids 1,2 --temperature inf
generate --model $M --prompt-ids 1,2 --temperature ''
generate --model $M --prompt-ids 1,2 --tokens 0
generate --model $M --prompt-ids 1,2 --tokens abc
generate --model $M --prompt-ids 1,2 --seed -5
generate --model $M --prompt-ids 1,99999
generate --model $M --prompt-ids 1,,2
generate --model $M --prompt-ids -1
generate --model $M
generate --model $M --prompt x --prompt-ids 1
generate --bogus
eval --model $M --corpus $T/corpus.h5:val --max-tokens -1
eval --model $M --corpus $T/corpus.h5:val --seq-len 0
eval --model $M --corpus $T/corpus.h5:val --seq-len 999
eval --model $M --corpus $T/corpus.h5:val --batch x
eval --model $M --corpus $T/corpus.h5:nosuch
eval --model $M --corpus $T/none.h5
eval --model $M --corpus $M
eval --model $T/corpus.h5 --corpus $T/corpus.h5
eval --model $M --corpus $T/corpus.h5 --task nope
eval --model $M
expand --in $M --out $O/e.h5 --blocks 0
expand --in $M --out $O/e.h5 --blocks 3
expand --in $M --out $O/e.h5 --blocks x
expand --in $M --out $O/e.h5 --blocks 2 --position middle
expand --in $M --out $O/nodir/e.h5 --blocks 2
expand --in $T/corpus.h5 --out $O/e.h5 --blocks 2
expand --in $M --blocks 2
export --in $M --to hf $O/hf --dtype f16
export --in $M --to zz $O/x
export --in $M --to hf $O/hf --shard-size 0
export --in $M --to h5 $O/x.h5 --shard-size 5G
export --in $M --to hf $T
export --in $T/corpus.h5 --to h5 $O/x.h5
export --in $M --to h5
import --from xx $T/hf --out $O/i.h5
import --from hf $T/none --out $O/i.h5
import --from llama2c $M --out $O/i.h5
import --from hf $T/hf
prepare --tokenizer $TOK --out $O/c.h5 --val-fraction 1.5 $T/docs.jsonl
prepare --tokenizer $TOK --out $O/c.h5 --val-fraction nan $T/docs.jsonl
prepare --tokenizer $TOK --out $O/c.h5 --synthetic arithmetic --docs -3
prepare --tokenizer $TOK --out $O/c.h5 --synthetic geometry --docs 3
prepare --tokenizer $TOK --out $O/c.h5 $T/none.jsonl
prepare --tokenizer $T/docs.jsonl --out $O/c.h5 $T/docs.jsonl
prepare --tokenizer $TOK --out $O/c.h5
prepare --tokenizer $TOK --out $O/c.h5 --text-key nope $T/docs.jsonl
info $T/none.h5
info $T/docs.jsonl
info
init --config $T/run.ini
init --config $T/run.ini --out $O/n.h5 model.dim=0
nosuchcommand
FLAGS

bad=$((tried - good))
echo "hostile: $tried cases, $good behaved ($zero of them harmless damage that ran: exit 0), $bad did not"
[ $bad = 0 ] || { cat "$T/bad.txt"; fail "$bad hostile cases misbehaved"; }
