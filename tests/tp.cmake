# Tensor parallelism inside a stage (tp.h): script tests, one line each.
lp_script_test(tp_train mpi 4)
