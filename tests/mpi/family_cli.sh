# family_cli.sh - the CLI end to end on each HF family fixture (Llama 3, Qwen2, Qwen3, Mistral):
# import -> expand (refuses unless bitwise identity) -> generate (greedy ids = the float64
# reference's, tiny-F.reference.h5 /decode/tokens) -> train the new blocks on a byte corpus with
# checkpoints, pp = 2 bitwise equal to pp = 1, 2 + 2 steps resumed bitwise equal to 4 straight ->
# export --to hf -> import -> the same greedy ids; `info` names the architecture.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
export OMP_NUM_THREADS=1
mpi() { "$MPIEXEC" -q --oversubscribe --bind-to none "$@"; }
PY=/usr/bin/python3
# a corpus of bytes (vocabulary 256 fits every fixture): the first 40 Brown documents
gzip -dc "$LP_SOURCE_DIR/inputs/corpora/brown.jsonl.gz" | head -40 > "$T/docs.jsonl"
"$PY" - "$T/docs.jsonl" "$T/corpus.h5" <<'PY' || fail "writing the byte corpus"
import json, sys, h5py, numpy as np
docs = [json.loads(l)["text"].encode("utf-8") for l in open(sys.argv[1])]
with h5py.File(sys.argv[2], "w") as f:
    f.attrs.create("format", np.bytes_(b"llamapro-corpus"))  # fixed-length, as the writer stores it
    for k, v in (("format_version", 1), ("vocab_size", 256), ("bos_id", 1), ("eos_id", 2)):
        f.attrs.create(k, v, dtype="<i4")
    for split, part in (("train", docs[:34]), ("val", docs[34:])):
        toks = np.concatenate([np.frombuffer(d, dtype=np.uint8) for d in part]).astype("<u2")
        f[f"splits/{split}/tokens"] = toks
        f[f"splits/{split}/doc_offsets"] = np.cumsum([0] + [len(d) for d in part]).astype("<u8")
PY
ref_ids() { "$PY" -c "import h5py,sys; print(','.join(str(x) for x in h5py.File(sys.argv[1])['decode/tokens'][4:]))" "$1"; }
gen() { "$LLAMAPRO" generate --model "$1" --prompt-ids 1,39,13,16 --tokens 28 --temperature 0 --print-ids 2>/dev/null | tr -d ' \n'; }
for F in llama3 qwen2 qwen3 mistral; do
  D=$T/$F; mkdir -p "$D"
  run "$LLAMAPRO" import --from hf "$LP_FIXTURES/tiny-$F-hf" --out "$D/base.h5" > /dev/null
  arch=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['architectures'][0])" "$LP_FIXTURES/tiny-$F-hf/config.json")
  "$LLAMAPRO" info "$D/base.h5" 2>&1 | grep -q "$arch" || fail "$F: info does not name $arch: $("$LLAMAPRO" info "$D/base.h5" 2>&1 | head -5)"
  run "$LLAMAPRO" expand --in "$D/base.h5" --out "$D/exp.h5" --blocks 2 > /dev/null 2>&1
  want=$(ref_ids "$LP_FIXTURES/tiny-$F.reference.h5")
  got=$(gen "$D/exp.h5")
  [ "$got" = "$want" ] || fail "$F: expanded model's greedy ids $got, reference $want"
  lp_run_ini "$D/run.ini" "[model]" "path = $D/exp.h5" "[data]" "val = bytes:$T/corpus.h5:val" "[optim]" \
    "schedule = constant" "[run]" "dir = $D/run1" "eval_tokens = 512" "ckpt_every = 2"
  "$LLAMAPRO" train --config "$D/run.ini" 2> "$D/p1.log" || fail "$F train: $(tail -3 "$D/p1.log")"
  mpi -n 2 "$LLAMAPRO" train --config "$D/run.ini" parallel.pp=2 run.dir="$D/run2" 2> "$D/p2.log" || fail "$F pp 2: $(tail -3 "$D/p2.log")"
  h5diff -q "$D/run1/final.h5" "$D/run2/final.h5" || fail "$F: pp 2 final model differs from pp 1"
  run "$LLAMAPRO" train --config "$D/run.ini" batch.steps=2 run.dir="$D/half" 2> /dev/null
  run "$LLAMAPRO" train --config "$D/run.ini" run.dir="$D/half" 2> "$D/half2.log"
  grep -q resuming "$D/half2.log" || fail "$F: no resume: $(tail -3 "$D/half2.log")"
  h5diff -q "$D/run1/final.h5" "$D/half/final.h5" || fail "$F: 2 + 2 resumed steps differ from 4 straight"
  # eval: the expanded model's loss equals the base model's (identity), 2 ranks = 1 rank to rounding,
  # and training on the corpus lowered it
  ev() { "$@" --corpus "$T/corpus.h5:val" --max-tokens 1024 --seq-len 32 2>/dev/null | grep -o 'loss [0-9.]*' | cut -d' ' -f2; }
  lb=$(ev "$LLAMAPRO" eval --model "$D/base.h5"); lx=$(ev "$LLAMAPRO" eval --model "$D/exp.h5")
  l2=$(ev mpi -n 2 "$LLAMAPRO" eval --model "$D/exp.h5"); lf=$(ev "$LLAMAPRO" eval --model "$D/run1/final.h5")
  python3 -c "import sys; b,x,t,f=map(float,sys.argv[1:]); assert b==x and abs(t-x)<=1e-5*x and f<x, (b,x,t,f)" "$lb" "$lx" "$l2" "$lf" \
    || fail "$F: eval losses base $lb expanded $lx (2 ranks $l2) trained $lf"
  run "$LLAMAPRO" export --in "$D/run1/final.h5" --to hf "$D/hf" > /dev/null
  "$PY" -c "import json,sys; c=json.load(open(sys.argv[1])); assert c['architectures']==[sys.argv[2]], c" "$D/hf/config.json" "$arch" \
    || fail "$F: exported config.json does not name $arch"
  run "$LLAMAPRO" import --from hf "$D/hf" --out "$D/back.h5" > /dev/null
  a=$(gen "$D/run1/final.h5"); b=$(gen "$D/back.h5")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "$F: greedy ids after export -> import differ: $a vs $b"
  echo "$F: ok (trained model continues with $a)"
done
