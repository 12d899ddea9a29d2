# Training area (expand, train, eval, bench): script tests, one line each.
lp_script_test(train_errors mpi 1)
lp_script_test(train_smoke mpi 2)
lp_script_test(bench_smoke mpi 1)
lp_script_test(eval_tasks mpi 2)
lp_script_test(eval_reference mpi 2)
lp_script_test(dry_run mpi 2)
