/* train.c - `llamapro train --config RUN.ini [section.key=value ...]`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/comm.h"
#include "llamapro/dry_run.h"
#include "llamapro/train_run.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llamapro train --config RUN.ini [--dry-run [--ranks N] [--ranks-per-node R] [--node-mem-gb X]]\n"
            "                      [section.key=value ...]\n\n"
            "Trains the model of [model] path on [data] train, under MPI (mpirun -n R / srun).\n"
            "Every key of RUN.ini can be overridden as section.key=value, e.g. optim.lr=1e-4\n"
            "batch.steps=100; an unknown key is an error. Methods ([method] name):\n"
            "  llama-pro  train only the layers marked trainable by `llamapro expand` (the new blocks);\n"
            "             embeddings, norms, LM head and original blocks stay frozen\n"
            "  full       train every tensor (the full fine-tuning baseline)\n"
            "  pretrain   train every tensor of a model from `llamapro init`\n"
            "[method] unfreeze = embeddings,norm,output,layers.N,... adds tensors.\n"
            "[data] train = CORPUS.h5[:split] trains on one corpus; a weighted mixture is\n"
            "  name:CORPUS.h5[:split]@weight, ... (e.g. code:run/corpus-code.h5@0.7, general:run/corpus-general.h5@0.3):\n"
            "  each global batch takes the weights' share of sequences from each source, by (seed, step) only;\n"
            "  a source smaller than its share repeats with a fresh order per epoch; metrics.jsonl step lines\n"
            "  add \"sources\": tokens and epochs per source.\n"
            "[parallel] pp = P pipeline stages (ranks = P x data-parallel replicas), schedule = 1f1b|gpipe,\n"
            "partition = 3,3,4 (layers per stage; default: balanced by a cost model that knows frozen blocks).\n\n"
            "Writes [run] dir/metrics.jsonl (one JSON object per step and per evaluation) and\n"
            "[run] dir/final.h5. Rank 0 prints step, loss, lr, gradient norm, tokens/s, MFU, ETA.\n\n"
            "Checkpoints: every [run] ckpt_every steps to [run] dir/ckpt/step-N.h5 (written as .partial,\n"
            "then renamed; `latest` names the newest; keep_last are kept). With [run] resume = auto a run\n"
            "that finds dir/ckpt/latest continues from it, with any pp x dp layout, bitwise as if never\n"
            "stopped. SIGUSR1 or SIGTERM (or the [run] max_minutes budget) makes every rank stop at the\n"
            "next step boundary, write a checkpoint and exit 75, so a batch script can requeue the job.\n\n"
            "--dry-run checks everything the run needs without training, and lists every problem (exit 1)\n"
            "or none (exit 0): the model file, every corpus (format, split, size, vocabulary and tokenizer\n"
            "against the model's), the layout against the rank count (this run's, or --ranks N), memory per\n"
            "rank against a node's (plan's estimate; the node: --node-mem-gb, else Slurm's\n"
            "SLURM_MEM_PER_NODE, else this machine's; ranks per node: --ranks-per-node, else this run's),\n"
            "and write access to [run] dir. It prints what the run would do.\n\n"
            "Non-finite numbers: every weight of the input model must be finite (checked once at start; a\n"
            "NaN or Inf is reported with the tensor's name and exit 1). A step whose loss or gradient norm\n"
            "is NaN or Inf stops the run before its optimizer update (no skipping: every rank stops at the\n"
            "same step), and so does an update that makes a weight non-finite, before anything is saved:\n"
            "exit 1 with the step and the advice to lower [optim] lr. No checkpoint or final model is ever\n"
            "written with a non-finite value; ckpt/latest keeps naming the last checkpoint written\n"
            "before the failure. [optim] values that make the update undefined are refused at start:\n"
            "lr >= 0, min_lr >= 0, eps > 0, beta1 and beta2 in [0, 1), weight_decay >= 0, clip >= 0\n"
            "(0 = no clipping).\n\n"
            "Keys and their defaults: inputs/configs/*.ini and README.md (\"Run configuration\").\n");
}

int lp_cmd_train(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'}, {"help", no_argument, 0, 'h'},
                                         {"dry-run", no_argument, 0, 'd'}, {"ranks", required_argument, 0, 'r'},
                                         {"ranks-per-node", required_argument, 0, 'R'},
                                         {"node-mem-gb", required_argument, 0, 'm'}, {0, 0, 0, 0}};
    const char *config = NULL;
    int o, dry = 0;
    lp_dry_run_opts dro = {0};
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (o == 'c') config = optarg;
        else if (o == 'h') { usage(stdout); return 0; }
        else if (o == 'd') dry = 1;
        else if (o == 'r' && (dro.ranks = atoi(optarg)) <= 0) lp_user_error("train: --ranks '%s': expected a positive integer", optarg);
        else if (o == 'R' && (dro.ranks_per_node = atoi(optarg)) <= 0)
            lp_user_error("train: --ranks-per-node '%s': expected a positive integer", optarg);
        else if (o == 'm' && !((dro.node_mem = atof(optarg) * 1e9) > 0))
            lp_user_error("train: --node-mem-gb '%s': expected a positive number", optarg);
        else if (o == 'r' || o == 'R' || o == 'm') continue;
        else lp_user_error("train: unknown option (see llamapro train --help)");
    }
    if (!config) lp_user_error("train: --config RUN.ini is required (see llamapro train --help)");
    lp_run_config rc;
    lp_run_config_read(&rc, config, argv + optind, argc - optind);
    lp_run_config_check(&rc, config);
    lp_comm c;
    lp_comm_init(&c);
    int code = dry ? lp_train_dry_run(&rc, config, &dro, &c) : lp_train_run(&rc, config, &c);
    lp_comm_free(&c);
    lp_run_config_free(&rc);
    if (dry && code) { /* every rank found the same problems: a plain exit 1, no MPI_Abort */
        LP_CHECK_MPI(MPI_Finalize(), "finalising MPI");
        exit(code);
    }
    return code;
}
