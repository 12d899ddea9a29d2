# rel_ids.sh - token ids are checked where they enter (issue 10): train and eval refuse a corpus
# with ids >= the model's vocabulary, or negative, naming file, split and first bad position, before
# any compute, on 1 and 2 ranks; a corpus written by h5py (variable-length string attributes) is read
# (issue 11).
source "${LP_SOURCE_DIR:?run through ctest}/tests/mpi/rel_common.sh" || exit 1
# h5py's variable-length string attributes are read, and good ids train and evaluate
h5corpus "$T/good.h5" '[1] + [(i * 37) % 4096 for i in range(3000)]'
run "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/good.h5:val" --seq-len 16 >/dev/null
# one id = vocab at position 2500 (chunk-local and global position agree on 1 rank)
h5corpus "$T/big.h5" '[1] + [5] * 2499 + [4096] + [7] * 500'
expect_fail 1 "big.h5: split 'val': token 4096 at position 2500 is outside the model.s vocabulary \[0, 4096\)" \
  "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/big.h5:val" --seq-len 16
expect_fail 1 "big.h5: split 'val': token 4096 at position 2500 is outside" \
  $MPI -n 2 "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/big.h5:val" --seq-len 16
# negative ids in a signed dataset another tool wrote
h5corpus "$T/neg.h5" '[1] + [5] * 99 + [-3] + [7] * 500' int32
expect_fail 1 "neg.h5: split 'val': token -3 at position 100 is outside" \
  "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/neg.h5:val" --seq-len 16
# uint32 beyond INT_MAX is refused too (HDF5 clips it to INT_MAX on conversion)
h5corpus "$T/huge.h5" '[1] + [5] * 10 + [4000000000] + [7] * 500' uint32
expect_fail 1 "huge.h5: split 'val': token 2147483647 at position 11 is outside" \
  "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/huge.h5:val" --seq-len 16
# train: the train split and every val set are checked before step 1, no checkpoint is written
expect_fail 1 "big.h5: split 'train': token 4096 at position 2500" \
  $MPI -n 2 "$LLAMAPRO" train --config "$T/run.ini" data.train="$T/big.h5"
expect_fail 1 "neg.h5: split 'val': token -3 at position 100" \
  "$LLAMAPRO" train --config "$T/run.ini" data.val="x:$T/neg.h5"
[ ! -e "$T/run/ckpt/latest" ] && [ ! -e "$T/run/final.h5" ] || fail "a refused run wrote a checkpoint"
# many documents: doc_offsets span several scan chunks (every offset checked, chunk seams included)
"$PY" - "$T/many.h5" <<'PY'
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], "w") as f:
    f.attrs.update({"format": "llamapro-corpus", "format_version": 1, "vocab_size": 4096, "bos_id": 1, "eos_id": 2})
    for s in ("train", "val"):
        f[f"splits/{s}/tokens"] = (np.arange(100001) % 4000 + 1).astype("uint16")
        off = np.arange(0, 100001, 1, dtype="uint64"); off[-1] = 100001
        f[f"splits/{s}/doc_offsets"] = np.append(off, np.uint64(100001))[:100001]
PY
run "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/many.h5:val" --seq-len 16 --max-tokens 64 > /dev/null
# doc_offsets that point outside the tokens
"$PY" - "$T/good.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "a") as f:
    del f["splits/val/doc_offsets"]
    f["splits/val/doc_offsets"] = np.array([0, 10, 5, 3001], dtype="uint64")
PY
expect_fail 1 "good.h5: split 'val': doc_offsets\[2\] = 5" \
  "$LLAMAPRO" eval --model "$T/exp.h5" --corpus "$T/good.h5:val" --seq-len 16
echo "rel_ids: ok"
