# Tensor parallelism inside a stage (tp.h): script tests, one line each.
add_executable(tp_pblas ${CMAKE_CURRENT_SOURCE_DIR}/mpi/tp_pblas_main.c)
target_link_libraries(tp_pblas PRIVATE lpcore)
list(APPEND LP_TEST_ENV "LP_TP_PBLAS=$<TARGET_FILE:tp_pblas>")

lp_script_test(tp_train mpi 4)
lp_script_test(tp_pblas mpi 2)
lp_script_test(tp_family mpi 4)
