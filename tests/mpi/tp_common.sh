# tp_common.sh - sourced by the tensor-parallel tests (tp_train.sh, tp_family.sh) after lib.sh.
export OMP_NUM_THREADS=1
PY=/usr/bin/python3
L2="$LP_SOURCE_DIR/tests/mpi/tp_rel_l2.py"
mpi() { "$MPIEXEC" -q --oversubscribe --bind-to none "$@"; }
close_metrics() { # A.jsonl B.jsonl N [TOL]: N step losses (and grad norms) within TOL (1e-5) relative
  $PY - "$1" "$2" "$3" "${4:-1e-5}" <<'PYEOF'
import json, sys
def rows(p):
    return [(r["step"], r["loss"], r["grad_norm"]) for r in map(json.loads, open(p)) if "grad_norm" in r]
a, b, n, tol = rows(sys.argv[1]), rows(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
assert len(a) == len(b) == n and [r[0] for r in a] == [r[0] for r in b], (a, b)
for x, y in zip(a, b):
    for i in (1, 2):
        assert abs(x[i] - y[i]) <= tol * abs(x[i]), (x, y)
PYEOF
}
