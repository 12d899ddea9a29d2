/* cli.h - one entry point per subcommand (src/cli/<name>.c). Each parses its own flags with
 * getopt_long, answers --help, and returns an exit code (check.h). MPI is initialised by main. */
#ifndef LLAMAPRO_CLI_H
#define LLAMAPRO_CLI_H

/* argc/argv start at the subcommand's name (argv[0] = "import", ...). */
int lp_cmd_import(int argc, char **argv);
int lp_cmd_init(int argc, char **argv);
int lp_cmd_expand(int argc, char **argv);
int lp_cmd_prepare(int argc, char **argv);
int lp_cmd_train(int argc, char **argv);
int lp_cmd_eval(int argc, char **argv);
int lp_cmd_generate(int argc, char **argv);
int lp_cmd_export(int argc, char **argv);
int lp_cmd_info(int argc, char **argv);
int lp_cmd_bench(int argc, char **argv);
int lp_cmd_bench_network(int argc, char **argv); /* bench --network (src/cli/bench_network.c) */
int lp_cmd_plan(int argc, char **argv);

/* Parse "a,b,c" integers into out (at most max); returns count or -1 on a malformed list. */
int lp_parse_int_list(const char *s, int *out, int max);

#endif
