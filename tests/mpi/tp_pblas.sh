# tp_pblas.sh - both implementations of the tensor-parallel product (PBLAS psgemm over the BLACS
# grid, lp_gemm + MPI_Allreduce) agree with a product computed independently in double, on 2
# ranks: a block's wo shape and one whose output width does not divide by tp.
source "${LP_SOURCE_DIR:?run through ctest}/tests/cli/lib.sh" || exit 1
: "${LP_TP_PBLAS:?run through ctest}"
export OMP_NUM_THREADS=1
for shape in "64 96 48" "33 75 20"; do
  "$MPIEXEC" -q --oversubscribe --bind-to none -n 2 "$LP_TP_PBLAS" $shape 2 > "$T/out" 2>&1 || fail "$shape: $(cat "$T/out")"
  cat "$T/out"
done
echo "tp_pblas: passed"
