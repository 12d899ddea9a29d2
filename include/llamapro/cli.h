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

/* The --help paragraph every writing command ends with (the contract in README.md, "Exit codes"). */
#define LP_HELP_STOP                                                                                \
    "\nSIGTERM, SIGINT, SIGUSR1 or SIGHUP stop the command: the partial output is removed and the\n"  \
    "exit status is 128 + the signal number. A full or read-only disk is exit 1 naming the output.\n"

/* Parse "a,b,c" integers into out (at most max); returns count or -1 on a malformed list. */
int lp_parse_int_list(const char *s, int *out, int max);

/* The value of a command-line flag as a number inside [lo, hi]; anything else (empty, trailing
 * characters, overflow, NaN, Inf, out of range) is a user error naming the flag and the range. */
long long lp_flag_int(const char *flag, const char *s, long long lo, long long hi);
double lp_flag_double(const char *flag, const char *s, double lo, double hi);

#endif
