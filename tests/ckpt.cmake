# Checkpoint and export area: script tests, one line each.
lp_script_test(export_h5 mpi 2)
lp_script_test(ckpt_resume mpi 2)
lp_script_test(export_hf mpi 2)
lp_script_test(ckpt_corrupt mpi 1)
# checkpoint bench helper (not a test): bytes and seconds with and without external links
add_executable(ckpt_bench ${CMAKE_CURRENT_SOURCE_DIR}/mpi/ckpt_bench_main.c)
target_link_libraries(ckpt_bench PRIVATE lpcore)
lp_script_test(ckpt_layouts mpi 4)
lp_script_test(ckpt_as_model mpi 2)
