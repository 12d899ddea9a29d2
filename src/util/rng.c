/* rng.c - xoshiro256** (Blackman & Vigna), see rng.h. */
#include "llamapro/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void lp_rng_seed(lp_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t lp_rng_next(lp_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float lp_rng_uniform(lp_rng *r) { return (float)(lp_rng_next(r) >> 40) * (1.0f / 16777216.0f); }

float lp_rng_normal(lp_rng *r) {
    float u1 = lp_rng_uniform(r), u2 = lp_rng_uniform(r);
    if (u1 < 1e-30f) u1 = 1e-30f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

uint64_t lp_rng_below(lp_rng *r, uint64_t n) {
    /* Lemire's nearly-divisionless method would be faster; n is small and this is not hot. */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
    do x = lp_rng_next(r); while (x >= lim);
    return x % n;
}

uint64_t lp_rng_mix(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ (a * 0xd1b54a32d192ed03ULL);
    h = splitmix64(&x);
    x = h ^ (b * 0x8cb92ba72f3d8dd7ULL);
    return splitmix64(&x);
}
