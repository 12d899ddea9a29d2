# tp_rel_l2.py A.h5 B.h5 TOL: every tensor under /weights of A has the same shape in B and lies
# within TOL relative L2 of it (|a - b| / |a|); prints the worst.
import sys
import h5py
import numpy as np

a, b, tol = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3])
worst, names = 0.0, []


def visit(name, obj):
    global worst
    if not isinstance(obj, h5py.Dataset):
        return
    x = np.asarray(obj, dtype=np.float64)
    y = np.asarray(b["weights/" + name], dtype=np.float64)
    assert x.shape == y.shape, (name, x.shape, y.shape)
    r = np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30)
    names.append(name)
    worst = max(worst, r)
    assert r <= tol, f"{name}: relative L2 {r:.3g} > {tol}"


a["weights"].visititems(visit)
assert names, "no tensors"
print(f"{len(names)} tensors, worst relative L2 {worst:.3g}")
