/* Shared by the C references: a monotonic clock and the same pseudo-random sequence the
 * JavaScript cases use (xorshift32), so both sides touch exactly the same offsets. */
#ifndef MEMMAP_BENCH_COMMON_H
#define MEMMAP_BENCH_COMMON_H
#define _GNU_SOURCE
#include <stdint.h>
#include <time.h>

static inline double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline uint32_t xorshift32(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *state = x;
  return x;
}
#endif
