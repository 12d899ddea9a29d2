# Checkpoint and export area: script tests, one line each.
lp_script_test(export_h5 mpi 2)
lp_script_test(ckpt_resume mpi 2)
lp_script_test(export_hf mpi 2)
lp_script_test(ckpt_corrupt mpi 1)
