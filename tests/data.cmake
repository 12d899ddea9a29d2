# Data area (tokenizer, prepare, corpus files, sampler): script tests, one line each.
add_executable(sampler_layout ${CMAKE_CURRENT_SOURCE_DIR}/mpi/sampler_layout_main.c)
target_link_libraries(sampler_layout PRIVATE lpcore)
list(APPEND LP_TEST_ENV "LP_SAMPLER_LAYOUT=$<TARGET_FILE:sampler_layout>")

lp_script_test(prepare_ranks mpi 3)
lp_script_test(prepare_errors mpi 2)
lp_script_test(prepare_synthetic mpi 2)
lp_script_test(sampler_layouts mpi 2)
lp_script_test(bpe_reference mpi 2)
