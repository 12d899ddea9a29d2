# io area: importers, model file, info.
lp_script_test(import_errors mpi 1)
lp_script_test(model_file_mpi mpi 2)
lp_script_test(family_refuse mpi 1)
lp_script_test(family_cli mpi 2)
