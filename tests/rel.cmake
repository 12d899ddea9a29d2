# Reliability (issue 10): hostile inputs, full disks, concurrent runs, signals; one line each.
lp_script_test(rel_ids mpi 2)
lp_script_test(rel_parsers mpi 1)
lp_script_test(rel_lock mpi 2)
lp_script_test(rel_signals mpi 2)
lp_script_test(rel_resume_dp mpi 2)
lp_script_test(rel_diskfull mpi 2)
lp_script_test(rel_integrity mpi 2)
lp_script_test(hostile mpi 1)
