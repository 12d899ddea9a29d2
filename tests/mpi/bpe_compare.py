"""bpe_compare.py CORPUS.h5 REFERENCE.txt BOS NAME - the train split of a corpus written by
`llamapro prepare --val-fraction 0` against reference ids (one line per document, comma-separated,
from bpe_reference.js): every document must be BOS followed by exactly the reference's ids.
Prints the first difference with its context and exits 1, or prints a summary."""
import sys

import h5py
import numpy as np

corpus, ref_path, bos, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with h5py.File(corpus, "r") as f:
    toks = f["/splits/train/tokens"][...].astype(np.int64)
    offs = f["/splits/train/doc_offsets"][...].astype(np.int64)
    file_bos = int(f.attrs["bos_id"])
with open(ref_path) as f:
    refs = [line.rstrip("\n") for line in f]
if file_bos != bos:
    sys.exit(f"FAIL {name}: corpus bos_id {file_bos}, expected {bos}")
if len(offs) - 1 != len(refs):
    sys.exit(f"FAIL {name}: {len(offs) - 1} documents in the corpus, {len(refs)} in the reference")
n_tok = 0
for d, line in enumerate(refs):
    want = np.array([int(x) for x in line.split(",")] if line else [], dtype=np.int64)
    got = toks[offs[d]:offs[d + 1]]
    if len(got) == 0 or got[0] != bos:
        sys.exit(f"FAIL {name}: document {d} does not start with BOS {bos}")
    got = got[1:]
    if len(got) != len(want) or not np.array_equal(got, want):
        k = int(np.argmax(got[:min(len(got), len(want))] != want[:min(len(got), len(want))])) \
            if min(len(got), len(want)) and not np.array_equal(got[:min(len(got), len(want))], want[:min(len(got), len(want))]) \
            else min(len(got), len(want))
        sys.exit(f"FAIL {name}: document {d} differs at token {k} of {len(want)} (llamapro has {len(got)}): "
                 f"llamapro {got[max(0, k - 3):k + 4].tolist()} reference {want[max(0, k - 3):k + 4].tolist()}")
    n_tok += len(want)
print(f"{name}: {len(refs)} documents, {n_tok} tokens identical to the reference")
