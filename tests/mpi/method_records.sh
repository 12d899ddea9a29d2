# method_records.sh - [method] is applied to a run, never written into its model as records: a
# `full` run's final model keeps the LLaMA Pro records of its input (layer attribute `trainable` =
# the blocks `expand` added, origins), so a later `llama-pro` run on it trains only those blocks:
# every other tensor of its final model is bitwise that of its input.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
{ lp_tiny_model "$T/exp.h5"; cat <<INI
[data]
train = $T/corpus.h5
seq_len = 32
[batch]
micro_batch = 2
microbatches = 1
steps = 2
[optim]
lr = 1e-3
warmup_steps = 0
INI
} > "$T/run.ini"
lp_tiny_setup "$T/run.ini" 40 0.2   # 4 -> 6 layers, new: 2 and 5
attr() { h5dump -a "/weights/layers/$2/$3" "$1" | sed -n 's/.*(0): //p'; }
run "$LLAMAPRO" train --config "$T/run.ini" method.name=full run.dir="$T/full" 2> /dev/null
for l in 000 001 002 003 004 005; do
  want=0; [ $l = 002 ] || [ $l = 005 ] && want=1
  [ "$(attr "$T/full/final.h5" $l trainable)" = $want ] || fail "full run's final.h5: layer $l trainable = $(attr "$T/full/final.h5" $l trainable), expected $want"
  [ "$(attr "$T/full/final.h5" $l origin)" = "$(attr "$T/exp.h5" $l origin)" ] || fail "origin of layer $l changed"
done
# the full run trained everything (so the next comparison is not vacuous)
! h5diff -q "$T/exp.h5" "$T/full/final.h5" /weights/layers/000/wq /weights/layers/000/wq > /dev/null || fail "full run left layer 0 unchanged"
run "$LLAMAPRO" train --config "$T/run.ini" model.path="$T/full/final.h5" run.dir="$T/pro" 2> "$T/pro.log"
grep -q 'method llama-pro' "$T/pro.log" || fail "no method line: $(cat "$T/pro.log")"
for t in tok_embeddings norm output layers/000/wq layers/001/w2 layers/003/w1 layers/004/wo layers/004/attn_norm; do
  h5diff -q "$T/full/final.h5" "$T/pro/final.h5" "/weights/$t" "/weights/$t" || fail "llama-pro on a full run's model changed frozen /weights/$t"
done
for t in layers/002/wq layers/005/w2; do
  ! h5diff -q "$T/full/final.h5" "$T/pro/final.h5" "/weights/$t" "/weights/$t" > /dev/null || fail "new block /weights/$t did not train"
done
echo "method_records: passed"
