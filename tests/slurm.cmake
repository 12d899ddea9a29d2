# e2e: batch jobs on the one-node local Slurm cluster (slurm/local-cluster.sh), smoke sized.
# Each test starts and stops its own cluster (free ports, picked by local-cluster.sh); one at a time
# (RESOURCE_LOCK) because each job uses both cores (PROCESSORS 2). Exit 77 = skipped: not root, or Slurm
# cannot be installed (tests/e2e/cluster.sh).
lp_script_test(main_job e2e 2)
lp_script_test(main_job_bash e2e 2)
lp_script_test(math_job e2e 2)
lp_script_test(time_limit_requeue e2e 2)
lp_script_test(kill_rank e2e 2)
lp_script_test(kill_rank_resume e2e 2)
foreach(t main_job main_job_bash math_job time_limit_requeue kill_rank kill_rank_resume)
  set_tests_properties(e2e.${t} PROPERTIES RESOURCE_LOCK local_slurm TIMEOUT 600)
endforeach()
# two nodes of the local cluster (network namespaces on a bridge): the main job with one stage per
# node over TCP, bitwise the 1-node losses; a killed rank on node2; requeue; stop leaves nothing
lp_script_test(two_nodes e2e 2)
set_tests_properties(e2e.two_nodes PROPERTIES RESOURCE_LOCK local_slurm SKIP_RETURN_CODE 77 TIMEOUT 900)
# the scaling study (jobs/scaling-study.slurm) on 2 nodes: runs, report, figures, bitwise check
lp_script_test(scaling_study e2e 2)
set_tests_properties(e2e.scaling_study PROPERTIES RESOURCE_LOCK local_slurm SKIP_RETURN_CODE 77 TIMEOUT 900)
# two clusters started at once pick different free ports; stop removes each one's daemons and state
lp_script_test(two_clusters e2e 2)
set_tests_properties(e2e.two_clusters PROPERTIES RESOURCE_LOCK local_slurm TIMEOUT 300)
