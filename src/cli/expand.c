/* expand.c - `llamapro expand --in M.h5 --out E.h5 --blocks P [--position ...]`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/expand.h"
#include "llamapro/h5util.h"
#include "llamapro/model_file.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: llamapro expand --in MODEL.h5 --out EXPANDED.h5 --blocks P [--position interleave|top|bottom]\n\n"
            "LLaMA Pro block expansion. Adds P identity blocks: copies of existing blocks whose attention\n"
            "output projection (wo) and MLP down projection (w2) are zero, so the expanded model computes\n"
            "exactly the base model's function. The new blocks are marked trainable; `llamapro train`\n"
            "with [method] name = llama-pro trains only them.\n"
            "  interleave  (default, the paper's method) after each group of L/P blocks, a copy of the\n"
            "              group's last block; P must divide L (32 layers, P=8: new blocks 4, 9, ..., 39)\n"
            "  top         P copies of the last block, stacked after it\n"
            "  bottom      P copies of the first block, stacked before it\n"
            "Before writing, the base and expanded models run on a probe batch; the file is written only\n"
            "if their logits are bitwise identical.\n" LP_HELP_STOP);
}

int lp_cmd_expand(int argc, char **argv) {
    lp_stop_removes_partials(); /* a stop signal leaves no partial output: exit 128 + signal */
    static const struct option opts[] = {{"in", required_argument, 0, 'i'},     {"out", required_argument, 0, 'o'},
                                         {"blocks", required_argument, 0, 'b'}, {"position", required_argument, 0, 'p'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *in = NULL, *out = NULL, *pos = "interleave";
    int P = 0, o;
    while ((o = getopt_long(argc, argv, "i:o:b:p:h", opts, NULL)) != -1) {
        switch (o) {
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'b':
            P = (int)lp_flag_int("--blocks", optarg, 1, 4096);
            break;
        case 'p': pos = optarg; break;
        case 'h': usage(stdout); return 0;
        default: lp_user_error("expand: unknown option (see llamapro expand --help)");
        }
    }
    if (!in || !out || !P) lp_user_error("expand: --in, --out and --blocks are required (see llamapro expand --help)");
    int position = lp_expand_position_parse(pos);
    if (position < 0) lp_user_error("--position: '%s' is not one of interleave, top, bottom", pos);
    lp_check_output_path(out);
    lp_model base, ex;
    lp_model_load(&base, in, MPI_COMM_WORLD);
    int *nl = lp_calloc((size_t)P, sizeof(int), "planning the expansion");
    char err[512];
    if (lp_expand(&base, &ex, P, (lp_expand_position)position, nl, err, sizeof err))
        lp_user_error("%s: %s", in, err);
    for (int k = 0; k < P; k++) ex.layers[nl[k]].marked_trainable = 1;
    if (!lp_expand_verify_identity(&base, &ex, 1))
        lp_user_error("%s: the expanded model's logits differ from the base model's on the probe batch; "
                      "nothing written (non-finite weights in the base?)", in);
    lp_model_save(&ex, out, MPI_COMM_WORLD);
    char list[512];
    int off = 0;
    for (int k = 0; k < P && off < (int)sizeof list - 12; k++) off += snprintf(list + off, sizeof list - off, "%s%d", k ? "," : "", nl[k]);
    lp_info("expand: %s -> %s: %d -> %d layers, new blocks at %s (%s); identity verified", in, out,
            base.cfg.n_layers, ex.cfg.n_layers, list, pos);
    lp_free(nl);
    lp_model_free(&ex);
    lp_model_free(&base);
    return 0;
}
