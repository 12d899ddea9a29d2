/* test_import.c - importers and the model file, against the fixtures' float64 reference weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "llamapro/check.h"
#include "llamapro/import.h"
#include "llamapro/model_file.h"
#include "llamapro/safetensors.h"

/* Every tensor equals /base/weights/<name> of the reference to float32 rounding. */
static void check_against_reference(lp_model *m) {
    char ref[4096];
    snprintf(ref, sizeof ref, "%s", fx_path("tiny-gqa.reference.h5"));
    int checked = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        lp_tensor *t = &m->tensors[i];
        char dset[96];
        snprintf(dset, sizeof dset, "/base/weights/%s", t->name);
        size_t n = 0;
        double *want = fx_read(ref, dset, &n);
        assert_int_equal(n, t->numel);
        double d = fx_max_abs_diff_f(t->data, want, n);
        if (d > 1e-6) fail_msg("%s: max abs diff %g", t->name, d);
        free(want);
        checked++;
    }
    assert_int_equal(checked, 4 * 9 + 3); /* untied: embeddings, 4 x 9 layer tensors, norm, output */
}

/* Config as documented in fixtures/README.md. */
static void check_config(const lp_config *c) {
    assert_int_equal(c->dim, 48);
    assert_int_equal(c->hidden_dim, 128);
    assert_int_equal(c->n_layers, 4);
    assert_int_equal(c->n_heads, 6);
    assert_int_equal(c->n_kv_heads, 2);
    assert_int_equal(c->vocab_size, 96);
    assert_int_equal(c->max_seq_len, 32);
    assert_true(c->norm_eps == 1e-5f);
    assert_true(c->rope_theta == 10000.0f);
    assert_int_equal(c->tie_embeddings, 0);
}

static void test_llama2c_matches_reference(void **state) {
    lp_model m;
    lp_import_llama2c(&m, fx_path("tiny-gqa.llama2c.bin"));
    check_config(&m.cfg);
    check_against_reference(&m);
    assert_null(m.tokenizer);
    lp_model_free(&m);
}

static void test_hf_matches_reference(void **state) {
    lp_model m;
    lp_import_hf(&m, fx_path("tiny-gqa-hf"));
    check_config(&m.cfg);
    check_against_reference(&m);
    for (int l = 0; l < 4; l++) {
        char o[32];
        snprintf(o, sizeof o, "base:%d", l);
        assert_string_equal(m.layers[l].origin, o);
    }
    lp_model_free(&m);
}

/* permute is transformers' view(H, hd/2, 2, in).transpose(1, 2): check one index by hand, then that
 * unpermute inverts it. */
static void test_permute(void **state) {
    enum { H = 2, HD = 6, IN = 3 };
    float w[H * HD * IN], orig[H * HD * IN];
    for (int i = 0; i < H * HD * IN; i++) w[i] = orig[i] = (float)i;
    lp_hf_permute(w, H, HD, IN);
    /* HF row h*hd + j*hd/2 + i holds Meta row h*hd + 2i + j: HF row 1*6 + 1*3 + 2 = 11 <- Meta 6 + 5. */
    assert_true(w[11 * IN + 1] == orig[11 * IN + 1]);
    assert_true(w[(6 + 3 + 1) * IN] == orig[(6 + 3) * IN]); /* i=1, j=1: HF 10 <- Meta 9 */
    assert_true(w[(0 + 0 + 2) * IN] == orig[4 * IN]);       /* i=2, j=0: HF 2 <- Meta 4 */
    assert_true(w[(0 + 3 + 0) * IN] == orig[1 * IN]);       /* i=0, j=1: HF 3 <- Meta 1 */
    lp_hf_unpermute(w, H, HD, IN);
    assert_memory_equal(w, orig, sizeof w);
}

/* IEEE binary16 decoded by its definition (sign, 5-bit exponent biased by 15, 10-bit fraction),
 * in double: written here, independently of safetensors.c. */
static float ref_f16(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, f = h & 1023;
    double v = e == 0 ? ldexp(f, -24) : e == 31 ? (f ? NAN : INFINITY) : ldexp(1024 + f, e - 25);
    return (float)(s ? -v : v);
}

/* Every one of the 65536 F16 and BF16 bit patterns decodes bitwise to the reference (bfloat16 is
 * the high half of a float32, so its reference is the pattern shifted into place). */
static void test_half_conversions_exhaustive(void **state) {
    for (uint32_t h = 0; h < 65536; h++) {
        float got = lp_f16_to_f32((uint16_t)h), want = ref_f16((uint16_t)h);
        if (isnan(want)) {
            if (!isnan(got) || signbit(got) != signbit(want)) fail_msg("f16 0x%04x: %g, expected a NaN", h, got);
        } else if (memcmp(&got, &want, 4)) {
            fail_msg("f16 0x%04x: %a, expected %a", h, got, want);
        }
        uint32_t bits = h << 16;
        float bw, bg = lp_bf16_to_f32((uint16_t)h);
        memcpy(&bw, &bits, 4);
        if (isnan(bw) ? !isnan(bg) || signbit(bg) != signbit(bw) : memcmp(&bg, &bw, 4) != 0)
            fail_msg("bf16 0x%04x: %a, expected %a", h, bg, bw);
    }
}

static void test_half_conversions(void **state) {
    assert_true(lp_f16_to_f32(0x3C00) == 1.0f);
    assert_true(lp_f16_to_f32(0xC000) == -2.0f);
    assert_true(lp_f16_to_f32(0x7BFF) == 65504.0f);
    assert_true(lp_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    assert_true(lp_f16_to_f32(0x03FF) == 1023.0f * ldexpf(1.0f, -24));
    assert_true(lp_f16_to_f32(0x3555) == 0.333251953125f);
    assert_true(isinf(lp_f16_to_f32(0x7C00)));
    assert_true(lp_bf16_to_f32(0x3F80) == 1.0f);
    assert_true(lp_bf16_to_f32(0x4049) == 3.140625f);
}

static void assert_models_equal(lp_model *a, lp_model *b) {
    assert_memory_equal(&a->cfg, &b->cfg, sizeof a->cfg);
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (int i = 0; i < a->n_tensors; i++) {
        assert_string_equal(a->tensors[i].name, b->tensors[i].name);
        assert_memory_equal(a->tensors[i].data, b->tensors[i].data, a->tensors[i].numel * sizeof(float));
    }
    for (int l = 0; l < a->cfg.n_layers; l++) assert_string_equal(a->layers[l].origin, b->layers[l].origin);
    assert_int_equal(a->tokenizer_len, b->tokenizer_len);
    if (a->tokenizer) assert_memory_equal(a->tokenizer, b->tokenizer, a->tokenizer_len);
}

static void test_save_load_roundtrip(void **state) {
    lp_model m, r;
    lp_import_hf(&m, fx_path("tiny-gqa-hf"));
    lp_import_tokenizer(&m, fx_path("llama2-tokenizer/tokenizer.model"));
    snprintf(m.layers[2].origin, sizeof m.layers[2].origin, "copy-of:1");
    m.layers[2].marked_trainable = 1;
    const char *json = "{\"method\":\"llama-pro\",\"blocks\":2,\"position\":\"interleave\","
                       "\"source\":\"base.h5\",\"new_layers\":[2,5]}";
    m.expansion_json = lp_calloc(strlen(json) + 1, 1, "test");
    strcpy(m.expansion_json, json);
    char path[4096];
    snprintf(path, sizeof path, "%s/rt.h5", fx_tmpdir());
    lp_model_save(&m, path, MPI_COMM_WORLD);
    char partial[4200];
    snprintf(partial, sizeof partial, "%s.partial", path);
    assert_null(fopen(partial, "r")); /* renamed into place */
    lp_model_load(&r, path, MPI_COMM_WORLD);
    assert_models_equal(&m, &r);
    assert_int_equal(r.tokenizer_len, 499723);
    assert_string_equal(r.expansion_json, json);
    for (int l = 0; l < 4; l++) {
        assert_int_equal(r.layers[l].marked_trainable, l == 2);
        assert_null(r.layers[l].grads); /* loading never allocates gradients */
    }
    assert_int_equal(lp_model_any_trainable(&r), 0);

    /* The layout of DESIGN.md section 4, read with plain HDF5. */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Lexists(f, "/weights/layers/003/w2", H5P_DEFAULT) > 0);
    assert_true(H5Lexists(f, "/weights/output", H5P_DEFAULT) > 0);
    hid_t g = H5Gopen2(f, "/expansion", H5P_DEFAULT);
    int blocks = 0, nl[2] = {0, 0};
    hid_t a = H5Aopen(g, "blocks", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_INT, &blocks);
    H5Aclose(a);
    a = H5Aopen(g, "new_layers", H5P_DEFAULT);
    H5Aread(a, H5T_NATIVE_INT, nl);
    H5Aclose(a);
    assert_int_equal(blocks, 2);
    assert_int_equal(nl[0], 2);
    assert_int_equal(nl[1], 5);
    H5Gclose(g);
    hid_t d = H5Dopen2(f, "/weights/layers/000/wq", H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d);
    assert_int_equal(H5Pget_nfilters(dcpl), 1);
    unsigned flags;
    size_t nelem = 0;
    assert_int_equal(H5Pget_filter2(dcpl, 0, &flags, &nelem, NULL, 0, NULL, NULL), H5Z_FILTER_FLETCHER32);
    H5Pclose(dcpl);
    H5Dclose(d);
    H5Fclose(f);
    lp_model_free(&m);
    lp_model_free(&r);
}

/* A tied llama2.c file (positive vocab) gets no /weights/output and loads back tied. */
static void test_tied_llama2c(void **state) {
    size_t n;
    char *buf = lp_read_file(fx_path("tiny-gqa.llama2c.bin"), &n);
    int32_t v;
    memcpy(&v, buf + 20, 4);
    assert_int_equal(v, -96);
    v = 96;
    memcpy(buf + 20, &v, 4);
    char path[4096], out[4096];
    snprintf(path, sizeof path, "%s/tied.bin", fx_tmpdir());
    snprintf(out, sizeof out, "%s/tied.h5", fx_tmpdir());
    FILE *fp = fopen(path, "wb");
    fwrite(buf, 1, n - 96 * 48 * 4, fp); /* drop the classifier */
    fclose(fp);
    lp_model m, r;
    lp_import_llama2c(&m, path);
    assert_int_equal(m.cfg.tie_embeddings, 1);
    assert_ptr_equal(m.output, m.tok_embeddings);
    lp_model_save(&m, out, MPI_COMM_WORLD);
    lp_model_load(&r, out, MPI_COMM_WORLD);
    assert_models_equal(&m, &r);
    assert_null(lp_model_tensor(&r, "output"));
    lp_model_free(&m);
    lp_model_free(&r);
    lp_free(buf);
}

int main(void) {
    MPI_Init(NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2c_matches_reference), cmocka_unit_test(test_hf_matches_reference),
        cmocka_unit_test(test_permute), cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_half_conversions_exhaustive),
        cmocka_unit_test(test_save_load_roundtrip), cmocka_unit_test(test_tied_llama2c)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
