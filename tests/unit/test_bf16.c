/* test_bf16.c - bfloat16 model files: a float32 model saved as bf16 loads back as the bf16 rounding
 * of every weight, computed here independently of llamapro (frexp/rint in double: keep 8
 * significant bits, ties to even), and the file is about half the size. */
#include <math.h>
#include <mpi.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "fixture.h"
#include "llamapro/model_file.h"

/* Round x to 8 significant bits (bfloat16's precision for normal numbers), half to even. */
static float ref_bf16(float x) {
    int e;
    double f = frexp((double)x, &e); /* x = f * 2^e, 0.5 <= |f| < 1 */
    return (float)ldexp(rint(ldexp(f, 8)), e - 8); /* rint rounds half to even */
}

static long long file_size(const char *p) {
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (long long)st.st_size;
}

static void test_reference_rounding(void **state) {
    /* hand-checked cases: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 -> 1 (even); 1 + 3*2^-8 -> 1 + 2^-6 */
    assert_true(ref_bf16(1.0f + 0x1p-8f) == 1.0f);
    assert_true(ref_bf16(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);
    assert_true(ref_bf16(-1.0f - 0x1p-8f - 0x1p-20f) == -1.0f - 0x1p-7f);
}

static void test_bf16_round_trip(void **state) {
    lp_model m, r;
    fx_load_reference_model(&m);
    /* make sure ties occur: a few exact halfway values */
    m.tok_embeddings[0] = 1.0f + 0x1p-8f;
    m.tok_embeddings[1] = 1.0f + 3 * 0x1p-8f;
    m.tok_embeddings[2] = -0.0f;
    char f32[4096], bf[4096];
    snprintf(f32, sizeof f32, "%s/m32.h5", fx_tmpdir());
    snprintf(bf, sizeof bf, "%s/m16.h5", fx_tmpdir());
    lp_model_save(&m, f32, MPI_COMM_WORLD);
    lp_model_save_as(&m, bf, MPI_COMM_WORLD, LP_DTYPE_BF16);
    lp_model_load(&r, bf, MPI_COMM_WORLD);
    size_t changed = 0, total = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const lp_tensor *a = &m.tensors[i], *b = &r.tensors[i];
        assert_string_equal(a->name, b->name);
        for (size_t k = 0; k < a->numel; k++, total++) {
            float want = ref_bf16(a->data[k]);
            if (b->data[k] != want || signbit(b->data[k]) != signbit(want))
                fail_msg("%s[%zu]: %.9g loaded as %.9g, expected %.9g", a->name, k, a->data[k], b->data[k], want);
            changed += a->data[k] != want;
        }
    }
    assert_true(changed > total / 2); /* the rounding really happened */
    assert_true(r.tok_embeddings[0] == 1.0f && r.tok_embeddings[1] == 1.0f + 0x1p-6f);
    double ratio = (double)file_size(bf) / (double)file_size(f32);
    printf("bf16 file %lld bytes, f32 %lld bytes (ratio %.3f)\n", file_size(bf), file_size(f32), ratio);
    /* weights halve; the tokenizer-free metadata is small at this size */
    assert_true(ratio > 0.4 && ratio < 0.65);
    lp_model_free(&m);
    lp_model_free(&r);
}

int main(void) {
    MPI_Init(NULL, NULL);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_reference_rounding), cmocka_unit_test(test_bf16_round_trip)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    MPI_Finalize();
    return rc;
}
