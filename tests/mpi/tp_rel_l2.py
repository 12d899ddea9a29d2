# tp_rel_l2.py A.h5 B.h5 TOL [WHOLE]: every tensor under /weights of A has the same shape in B and
# lies within TOL relative L2 of it (|a - b| / |a|), and (given WHOLE) all tensors together within
# WHOLE; prints the worst tensor and the whole model's.
import sys
import h5py
import numpy as np

a, b, tol = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3])
worst, names, sq = 0.0, [], [0.0, 0.0]


def visit(name, obj):
    global worst
    if not isinstance(obj, h5py.Dataset):
        return
    x = np.asarray(obj, dtype=np.float64)
    y = np.asarray(b["weights/" + name], dtype=np.float64)
    assert x.shape == y.shape, (name, x.shape, y.shape)
    r = np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30)
    sq[0] += np.sum((x - y) ** 2)
    sq[1] += np.sum(x ** 2)
    names.append(name)
    worst = max(worst, r)
    assert r <= tol, f"{name}: relative L2 {r:.3g} > {tol}"


a["weights"].visititems(visit)
assert names, "no tensors"
whole = np.sqrt(sq[0] / sq[1])
print(f"{len(names)} tensors, worst relative L2 {worst:.3g}, whole model {whole:.3g}")
assert len(sys.argv) < 5 or whole <= float(sys.argv[4]), f"whole model: relative L2 {whole:.3g} > {sys.argv[4]}"
