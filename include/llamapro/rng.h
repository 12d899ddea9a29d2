/* rng.h - a small, fast, reproducible random number generator (xoshiro256**, seeded by
 * splitmix64). Its whole state is four words, so checkpoints save and restore it exactly. */
#ifndef LLAMAPRO_RNG_H
#define LLAMAPRO_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } lp_rng;

void lp_rng_seed(lp_rng *r, uint64_t seed);
uint64_t lp_rng_next(lp_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float lp_rng_uniform(lp_rng *r);
/* Standard normal (Box-Muller). */
float lp_rng_normal(lp_rng *r);
/* Uniform integer in [0, n). */
uint64_t lp_rng_below(lp_rng *r, uint64_t n);
/* A seed derived from (seed, a, b): independent streams per (seed, step, ...). */
uint64_t lp_rng_mix(uint64_t seed, uint64_t a, uint64_t b);
#endif
