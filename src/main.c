/* main.c - subcommand dispatch. MPI is initialised here once for every subcommand: a single
 * process is a world of one, and the same binary runs under mpirun/srun. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "llamapro/blas_select.h"
#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/comm.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static void usage(FILE *f, const command *cmds) {
    fprintf(f,
            "usage: llamapro COMMAND [options]   (llamapro COMMAND --help for details)\n\n"
            "LLaMA Pro post-pretraining (block expansion, training of the new blocks) on MPI.\n\n"
            "commands:\n");
    for (const command *c = cmds; c->name; c++) fprintf(f, "  %-9s %s\n", c->name, c->summary);
    fprintf(f, "\nexit codes: 0 done, 1 bad input or usage, 2 internal error, "
               "75 stopped on a signal after a checkpoint\n");
}

int main(int argc, char **argv) {
    const command cmds[] = {
        {"import", lp_cmd_import, "convert a Hugging Face or llama2.c checkpoint to a model file"},
        {"init", lp_cmd_init, "write a randomly initialised model from a run config"},
        {"expand", lp_cmd_expand, "block expansion: insert identity copies of blocks"},
        {"prepare", lp_cmd_prepare, "tokenize JSONL/text corpora into an HDF5 corpus file"},
        {"train", lp_cmd_train, "train (LLaMA Pro, full fine-tuning, pretraining) under MPI"},
        {"eval", lp_cmd_eval, "mean loss and perplexity of a model on a corpus"},
        {"generate", lp_cmd_generate, "sample text from a model"},
        {"export", lp_cmd_export, "export a model to Hugging Face safetensors"},
        {"info", lp_cmd_info, "describe a model, corpus or checkpoint file"},
        {"bench", lp_cmd_bench, "time training steps: tokens/s, FLOP/s and MFU"},
        {"plan", lp_cmd_plan, "predict step time and memory of training layouts over node counts"},
        {NULL, NULL, NULL}};
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout, cmds);
        return argc < 2 ? LP_EXIT_USAGE : LP_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("llamapro %s\n", LP_VERSION);
        return 0;
    }
    const command *cmd = NULL;
    for (const command *c = cmds; c->name; c++)
        if (!strcmp(c->name, argv[1])) cmd = c;
    if (!cmd) {
        fprintf(stderr, "llamapro: unknown command '%s' (expected one of: import init expand prepare "
                        "train eval generate export info bench plan)\n", argv[1]);
        return LP_EXIT_USAGE;
    }
    lp_blas_select(argv); /* may re-execute this program once; see blas_select.h */
    int provided = 0;
    LP_CHECK_MPI(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "initialising MPI");
    lp_threads_setup(); /* OpenMP threads x ranks <= cores, for every subcommand */
    int rc = cmd->fn(argc - 1, argv + 1);
    /* A clean stop (every rank agreed, checkpoint written) finalises normally: no MPI_Abort. */
    if (rc == LP_EXIT_SIGNAL) {
        LP_CHECK_MPI(MPI_Finalize(), "finalising MPI");
        return rc;
    }
    if (rc != 0) lp_exit(rc);
    LP_CHECK_MPI(MPI_Finalize(), "finalising MPI");
    return 0;
}
