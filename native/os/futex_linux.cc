// The Linux futex calls behind futex.h. See futex(2) and futex_waitv(2) (Linux 5.16).
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "futex.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef FUTEX_32
#define FUTEX_32 2
#endif

namespace mm {

namespace {

// The kernel's struct futex_waitv, spelled out so that older headers need not have it.
struct WaitV {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};

// Fills `out` from nanoseconds and returns it, or returns null (no limit) for a negative value.
struct timespec* to_timespec(int64_t ns, struct timespec* out) {
  if (ns < 0) return nullptr;
  out->tv_sec = ns / 1000000000;
  out->tv_nsec = ns % 1000000000;
  return out;
}

}  // namespace

int thread_id() { return static_cast<int>(syscall(SYS_gettid)); }

int process_id() { return static_cast<int>(getpid()); }

int64_t monotonic_ns() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

int word_wait(uint32_t* word, uint32_t expected, int64_t timeout_ns) {
  struct timespec timeout;
  struct timespec* limit = to_timespec(timeout_ns, &timeout);
  // FUTEX_WAIT (not _PRIVATE): the word may be in memory another process maps.
  long rc = syscall(SYS_futex, word, FUTEX_WAIT, expected, limit, nullptr, 0);
  return rc == 0 ? 0 : -errno;
}

int word_wait_until(uint32_t* word, uint32_t expected, int64_t deadline_ns) {
  struct timespec deadline;
  struct timespec* limit = to_timespec(deadline_ns, &deadline);
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (Linux 2.6.25); the bitset
  // that matches every wake makes it a plain wait otherwise.
  long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, limit, nullptr, FUTEX_BITSET_MATCH_ANY);
  return rc == 0 ? 0 : -errno;
}

int word_wake(uint32_t* word, int count) {
  long rc = syscall(SYS_futex, word, FUTEX_WAKE, count, nullptr, nullptr, 0);
  return rc < 0 ? -errno : static_cast<int>(rc);
}

int words_wait(uint32_t* const* words, const uint32_t* expected, size_t count, int64_t deadline_ns) {
  if (count == 0 || count > kMaxWords) return -EINVAL;
  WaitV waits[kMaxWords];
  for (size_t i = 0; i < count; i++) {
    waits[i] = {expected[i], reinterpret_cast<uint64_t>(words[i]), FUTEX_32, 0};
  }
  struct timespec deadline;
  struct timespec* limit = to_timespec(deadline_ns, &deadline);
  long rc = syscall(SYS_futex_waitv, waits, count, 0, limit, CLOCK_MONOTONIC);
  return rc < 0 ? -errno : static_cast<int>(rc);
}

}  // namespace mm
