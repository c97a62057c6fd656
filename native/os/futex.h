// Waiting on a 32-bit word in shared memory and waking the waiters (futex(2), futex_waitv(2)).
// The words may be shared between processes, so the calls never use FUTEX_PRIVATE_FLAG.
#ifndef MEMMAP_OS_FUTEX_H_
#define MEMMAP_OS_FUTEX_H_

#include <cstddef>
#include <cstdint>

namespace mm {

// Sleeps while *word == expected, until woken or `timeout_ns` (relative; < 0: none) passes.
// Returns 0 when woken, -EAGAIN if the word did not hold `expected`, -ETIMEDOUT, or -EINTR.
int word_wait(uint32_t* word, uint32_t expected, int64_t timeout_ns);

// word_wait with an absolute CLOCK_MONOTONIC deadline (< 0: none) instead of a timeout.
int word_wait_until(uint32_t* word, uint32_t expected, int64_t deadline_ns);

// Wakes up to `count` waiters on the word. Returns how many were woken, or -errno.
int word_wake(uint32_t* word, int count);

// Waits on several words at once: returns the index of one that was woken, -EAGAIN if one of
// them did not hold its expected value, -ETIMEDOUT when the absolute CLOCK_MONOTONIC
// `deadline_ns` passed (< 0: none), or -errno. At most kMaxWords words. futex_waitv is Linux
// 5.16: older kernels (and seccomp profiles that predate it) answer -ENOSYS.
constexpr size_t kMaxWords = 128;
int words_wait(uint32_t* const* words, const uint32_t* expected, size_t count, int64_t deadline_ns);

// The kernel's id of the calling thread (gettid) and of its process (getpid): what a lock
// word records as its owner.
int thread_id();
int process_id();

// A timeout in nanoseconds as JavaScript passes it (a double; < 0: no limit), as an int64 that
// the conversion and `now + timeout` cannot overflow: clamped at 2^62 ns (146 years).
inline int64_t timeout_ns(double ns) {
  if (!(ns >= 0)) return -1;
  return ns >= 4.6e18 ? int64_t{4600000000000000000} : static_cast<int64_t>(ns);
}

// CLOCK_MONOTONIC now, in nanoseconds.
int64_t monotonic_ns();

}  // namespace mm

#endif  // MEMMAP_OS_FUTEX_H_
