# Mixed precision (bf16) area: script tests, one line each.
lp_script_test(ckpt_layouts_bf16 mpi 4)
lp_script_test(train_bf16_memory mpi 2)
# report.sh --compare/--label: the bf16 run against the fp32 run in one figure, relative val-loss differences
lp_script_test(report_compare mpi 1)
