# Pipeline parallelism (partitioner, schedules, stages): script tests, one line each.
add_executable(pipe_check ${CMAKE_CURRENT_SOURCE_DIR}/mpi/pipe_check_main.c ${CMAKE_CURRENT_SOURCE_DIR}/unit/fixture.c)
target_include_directories(pipe_check PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/unit)
target_link_libraries(pipe_check PRIVATE lpcore)
list(APPEND LP_TEST_ENV "LP_PIPE_CHECK=$<TARGET_FILE:pipe_check>")

lp_script_test(pipe_bitwise mpi 4)
lp_script_test(pipe_train mpi 4)
