# plan and bench --network: plan's memory against train's for the same layout, the network JSON, the
# 7B projection in seconds
lp_script_test(plan mpi 2)
