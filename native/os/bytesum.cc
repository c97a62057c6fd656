// byte_sum: the sum of every byte of a range, for `memmap checksum`.
//
// The loop is memory-bound once it is vectorised: PSADBW adds eight bytes into a 64-bit lane
// in one instruction, so the sum runs at close to the speed pages can be read. On x86-64 the
// AVX2 form is chosen at run time when the processor has it; SSE2 is part of the x86-64
// baseline; other processors use the plain loop, which compilers vectorise well enough.

#include "mm.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MEMMAP_X86 1
#endif

namespace mm {

namespace {

uint64_t sum_scalar(const unsigned char* p, size_t n) {
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) total += p[i];
  return total;
}

#ifdef MEMMAP_X86
uint64_t sum_sse2(const unsigned char* p, size_t n) {
  const __m128i zero = _mm_setzero_si128();
  __m128i acc = _mm_setzero_si128();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // The mapping may start at any byte offset, so the load must not assume alignment.
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    acc = _mm_add_epi64(acc, _mm_sad_epu8(v, zero));
  }
  uint64_t lanes[2];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), acc);
  return lanes[0] + lanes[1] + sum_scalar(p + i, n - i);
}

__attribute__((target("avx2"))) uint64_t sum_avx2(const unsigned char* p, size_t n) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc0 = _mm256_setzero_si256();
  __m256i acc1 = _mm256_setzero_si256();
  size_t i = 0;
  // Two accumulators keep two loads in flight per iteration.
  for (; i + 64 <= n; i += 64) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32));
    acc0 = _mm256_add_epi64(acc0, _mm256_sad_epu8(a, zero));
    acc1 = _mm256_add_epi64(acc1, _mm256_sad_epu8(b, zero));
  }
  acc0 = _mm256_add_epi64(acc0, acc1);
  uint64_t lanes[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), acc0);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + sum_sse2(p + i, n - i);
}
#endif

}  // namespace

uint64_t byte_sum(const void* data, size_t length) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
#ifdef MEMMAP_X86
  static const bool has_avx2 = __builtin_cpu_supports("avx2");
  return has_avx2 ? sum_avx2(p, length) : sum_sse2(p, length);
#else
  return sum_scalar(p, length);
#endif
}

}  // namespace mm
