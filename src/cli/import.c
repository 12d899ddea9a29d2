/* import.c - `llamapro import`: convert a Hugging Face or llama2.c checkpoint to a model file. */
#include <getopt.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/h5util.h"
#include "llamapro/import.h"
#include "llamapro/model_file.h"

static void help(void) {
    printf(
        "usage: llamapro import --from hf DIR | --from llama2c FILE [--tokenizer FILE] --out MODEL.h5\n\n"
        "Convert a pretrained LLaMA-family checkpoint into a llamapro model file (HDF5).\n\n"
        "  --from hf DIR        a Hugging Face directory of LlamaForCausalLM (Llama 2, Llama 3/3.1/3.2\n"
        "                       with rope_scaling llama3), Qwen2ForCausalLM (Qwen2/2.5: q/k/v biases),\n"
        "                       Qwen3ForCausalLM (q/k norms, explicit head_dim) or MistralForCausalLM\n"
        "                       (sliding window); other architectures, rope_scaling types and MoE\n"
        "                       configs are refused by name. config.json and\n"
        "                       model.safetensors, or the shards of model.safetensors.index.json.\n"
        "                       F32, F16 and BF16 tensors are converted to float32. q_proj and\n"
        "                       k_proj rows are un-permuted (inverse of transformers'\n"
        "                       convert_llama_weights_to_hf.py permute) so that RoPE rotates\n"
        "                       interleaved pairs as in Meta/llama2.c. The tokenizer, if present,\n"
        "                       is stored in the model: DIR/tokenizer.json (byte-level BPE, with\n"
        "                       DIR/tokenizer_config.json for BOS/EOS), else DIR/tokenizer.model.\n"
        "  --from llama2c FILE  a llama2.c legacy .bin (7 int32 header; negative vocab_size means an\n"
        "                       unshared classifier). norm_eps 1e-5 and rope_theta 10000 are assumed.\n"
        "  --tokenizer FILE     store this tokenizer in the model file: a SentencePiece tokenizer.model\n"
        "                       or a Hugging Face tokenizer.json (with the tokenizer_config.json\n"
        "                       beside it, when there is one)\n"
        "  --out MODEL.h5       output: /config attributes, float32 weights with Fletcher32\n"
        "                       checksums, every layer marked origin \"base:i\", not trainable.\n"
        "                       Written as MODEL.h5.partial and renamed when complete.\n"
        "  -h, --help           this text\n\n"
        "The input is validated completely before anything is written (file sizes, safetensors\n"
        "offsets, shapes against the config). Runs the same on one rank or under mpiexec.\n" LP_HELP_STOP);
}

int lp_cmd_import(int argc, char **argv) {
    lp_stop_removes_partials(); /* a stop signal leaves no partial output: exit 128 + signal */
    static const struct option opts[] = {{"from", required_argument, 0, 'f'},
                                         {"out", required_argument, 0, 'o'},
                                         {"tokenizer", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *from = NULL, *out = NULL, *tok = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': from = optarg; break;
        case 'o': out = optarg; break;
        case 't': tok = optarg; break;
        case 'h': if (lp_world_rank() == 0) help(); return 0;
        default: /* getopt_long sets optopt to the option's value when its argument is missing */
            if (optopt == 'f' || optopt == 'o' || optopt == 't')
                lp_user_error("import: option '%s' needs a value (see llamapro import --help)", argv[optind - 1]);
            lp_user_error("import: unknown option '%s' (see llamapro import --help)", argv[optind - 1]);
        }
    }
    if (!from) lp_user_error("import: --from hf|llama2c is required (see llamapro import --help)");
    if (strcmp(from, "hf") && strcmp(from, "llama2c"))
        lp_user_error("import: --from must be 'hf' or 'llama2c', got '%s'", from);
    if (optind != argc - 1)
        lp_user_error("import: expected one input %s after the options, got %d",
                      strcmp(from, "hf") ? "FILE" : "DIR", argc - optind);
    if (!out) lp_user_error("import: --out MODEL.h5 is required");
    const char *src = argv[optind];
    lp_check_output_path(out);

    lp_model m;
    if (!strcmp(from, "hf")) lp_import_hf(&m, src);
    else lp_import_llama2c(&m, src);
    char tjson[4200];
    snprintf(tjson, sizeof tjson, "%s/tokenizer.json", src);
    if (tok) lp_import_tokenizer(&m, tok);
    else if (!strcmp(from, "hf") && access(tjson, F_OK) == 0) lp_import_tokenizer(&m, src); /* json first */
    lp_model_save(&m, out, MPI_COMM_WORLD);

    if (lp_world_rank() == 0) {
        struct stat st;
        LP_CHECK_SYS(stat(out, &st) == 0, "reading the output file's size");
        printf("imported %s %s -> %s: %d layers, %zu parameters, %lld bytes%s\n", from, src, out, m.cfg.n_layers,
               lp_model_numel(&m, 0), (long long)st.st_size, m.tokenizer ? ", with tokenizer" : "");
    }
    lp_model_free(&m);
    return 0;
}
