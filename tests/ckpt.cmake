# Checkpoint and export area: script tests, one line each.
lp_script_test(export_h5 mpi 2)
