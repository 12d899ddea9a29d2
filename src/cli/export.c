/* export.c - `llamapro export`: a model or checkpoint to another model file (optionally bfloat16)
 * or to a Hugging Face LlamaForCausalLM directory (hf_export.h). */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/h5util.h"
#include "llamapro/hf_export.h"
#include "llamapro/model_file.h"

static void help(void) {
    printf("usage: llamapro export --in MODEL.h5|CKPT.h5 --to h5 OUT.h5 [--dtype f32|bf16]\n"
           "       llamapro export --in MODEL.h5|CKPT.h5 --to hf DIR [--dtype f32|bf16] [--shard-size SIZE]\n\n"
           "Write the weights of a model file or a training checkpoint elsewhere.\n\n"
           "  --in FILE         a llamapro model file or checkpoint (run/ckpt/step-N.h5)\n"
           "  --to h5 OUT.h5    a llamapro model file (weights, config, tokenizer, layer records and\n"
           "                    the expansion record; no optimizer state). Written as OUT.h5.partial\n"
           "                    and renamed when complete.\n"
           "  --to hf DIR       a Hugging Face directory of the model's architecture (LlamaForCausalLM,\n"
           "                    Qwen2ForCausalLM, Qwen3ForCausalLM or MistralForCausalLM, with its options\n"
           "                    in config.json): model-0000k-of-0000n.safetensors\n"
           "                    shards, model.safetensors.index.json, config.json, the tokenizer\n"
           "                    (tokenizer.model, or tokenizer.json + tokenizer_config.json, when the\n"
           "                    model has one) and README.md describing the expansion. q_proj/k_proj rows\n"
           "                    are permuted as transformers' convert_llama_weights_to_hf.py does. Written\n"
           "                    into DIR.partial and renamed when complete; DIR must not exist.\n"
           "  --dtype f32|bf16  storage type of the weights (default f32); bf16 rounds to nearest even.\n"
           "                    A bf16 model file stores uint16 datasets tagged dtype = \"bfloat16\" that\n"
           "                    every llamapro command reads back as float32.\n"
           "  --shard-size SIZE largest safetensors shard, bytes with optional K/M/G suffix (default 5G)\n"
           "  -h, --help        this text\n\n"
           "Runs the same on one rank or under mpiexec (ranks convert their share of the tensors).\n" LP_HELP_STOP);
}

/* "5G", "300M", "4096" -> bytes; 0 on a malformed value. */
static unsigned long long parse_size(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0) return 0;
    double mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1e3, end++;
    else if (*end == 'M' || *end == 'm') mul = 1e6, end++;
    else if (*end == 'G' || *end == 'g') mul = 1e9, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return 0;
    return (unsigned long long)(v * mul);
}

int lp_cmd_export(int argc, char **argv) {
    lp_stop_removes_partials(); /* a stop signal leaves no partial output: exit 128 + signal */
    static const struct option opts[] = {{"in", required_argument, 0, 'i'},
                                         {"to", required_argument, 0, 't'},
                                         {"dtype", required_argument, 0, 'd'},
                                         {"shard-size", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *in = NULL, *to = NULL, *dtype_s = "f32", *shard_s = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 't': to = optarg; break;
        case 'd': dtype_s = optarg; break;
        case 's': shard_s = optarg; break;
        case 'h': if (lp_world_rank() == 0) help(); return 0;
        default:
            if (optopt == 'i' || optopt == 't' || optopt == 'd' || optopt == 's')
                lp_user_error("export: option '%s' needs a value (see llamapro export --help)", argv[optind - 1]);
            lp_user_error("export: unknown option '%s' (see llamapro export --help)", argv[optind - 1]);
        }
    }
    if (!in) lp_user_error("export: --in MODEL.h5 is required (see llamapro export --help)");
    if (!to) lp_user_error("export: --to h5|hf is required (see llamapro export --help)");
    if (strcmp(to, "h5") && strcmp(to, "hf")) lp_user_error("export: --to must be 'h5' or 'hf', got '%s'", to);
    if (optind != argc - 1)
        lp_user_error("export: expected one output %s after the options, got %d", strcmp(to, "hf") ? "OUT.h5" : "DIR",
                      argc - optind);
    lp_dtype dtype;
    if (!strcmp(dtype_s, "f32")) dtype = LP_DTYPE_F32;
    else if (!strcmp(dtype_s, "bf16")) dtype = LP_DTYPE_BF16;
    else lp_user_error("export: --dtype must be 'f32' or 'bf16', got '%s'", dtype_s);
    unsigned long long shard = 5000000000ULL;
    if (shard_s && !(shard = parse_size(shard_s)))
        lp_user_error("export: --shard-size '%s' is not a size (expected bytes, e.g. 5G or 200M)", shard_s);
    if (shard_s && strcmp(to, "hf")) lp_user_error("export: --shard-size applies to --to hf only");
    const char *out = argv[optind];
    if (!strcmp(to, "h5")) lp_check_output_path(out);
    else lp_hf_export_check_dir(out);

    lp_model m;
    lp_model_load(&m, in, MPI_COMM_WORLD);
    if (!strcmp(to, "h5")) lp_model_save_as(&m, out, MPI_COMM_WORLD, dtype);
    else {
        /* DIR.partial is removed by an error or a stop signal like any partial file */
        char part[4200];
        snprintf(part, sizeof part, "%s.partial", out);
        lp_partial_register(part);
        lp_hf_export(&m, out, dtype, shard, MPI_COMM_WORLD);
        lp_partial_unregister(part);
    }
    if (lp_world_rank() == 0) {
        struct stat st;
        long long bytes = stat(out, &st) == 0 ? (long long)st.st_size : 0;
        printf("exported %s -> %s (%s, %s): %d layers, %zu parameters", in, out, to, dtype_s, m.cfg.n_layers,
               lp_model_numel(&m, 0));
        if (!strcmp(to, "h5")) printf(", %lld bytes", bytes);
        printf("\n");
    }
    lp_model_free(&m);
    return 0;
}
