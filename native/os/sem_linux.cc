// Named semaphores on Linux: the C library's sem_open family (sem_open(3), sem_clockwait(3),
// sem_timedwait(3)).
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <time.h>

#include <cstdint>
#include <cstring>

#include "sem.h"

namespace mm {

namespace {

inline sem_t* as_sem(void* sem) { return static_cast<sem_t*>(sem); }

using ClockWait = int (*)(sem_t*, clockid_t, const timespec*);

// sem_clockwait, which waits against CLOCK_MONOTONIC, is in glibc from 2.30 only; musl and
// older glibc (RHEL 8 has 2.28) lack it. It is looked up when the process runs rather than
// linked, for two reasons: the source then builds against any C library, and a binary built
// against a newer glibc still loads on an older one (a linked reference, even a weak one,
// would carry the symbol version GLIBC_2.30, which the loader insists on).
ClockWait find_clockwait() {
  static const ClockWait fn = reinterpret_cast<ClockWait>(dlsym(RTLD_DEFAULT, "sem_clockwait"));
  return fn;
}

// The absolute time `timeout_ns` from now on `clock`.
timespec deadline_on(clockid_t clock, int64_t timeout_ns) {
  timespec deadline;
  clock_gettime(clock, &deadline);
  int64_t ns = deadline.tv_nsec + timeout_ns % 1000000000;
  deadline.tv_sec += static_cast<time_t>(timeout_ns / 1000000000 + ns / 1000000000);
  deadline.tv_nsec = static_cast<long>(ns % 1000000000);
  return deadline;
}

// Checks on an unnamed process-shared semaphore that its first 64-bit word is the value in
// the low half and the waiters in the high half, as glibc's 64-bit implementation has it.
bool layout_is_known() {
#if defined(__GLIBC__) && (defined(__x86_64__) || defined(__aarch64__))
  if (sizeof(sem_t) < sizeof(uint64_t)) return false;
  sem_t probe;
  if (sem_init(&probe, 1, 5) != 0) return false;
  uint64_t word = 0;
  std::memcpy(&word, &probe, sizeof word);
  bool known = word == 5;
  if (known && sem_post(&probe) == 0) {
    std::memcpy(&word, &probe, sizeof word);
    known = word == 6;
  }
  sem_destroy(&probe);
  return known;
#else
  return false;
#endif
}

}  // namespace

int named_sem_open(const char* name, bool create, bool exclusive, int mode, unsigned value,
                   void** out) {
  int flags = (create ? O_CREAT : 0) | (exclusive ? O_EXCL : 0);
  sem_t* sem = sem_open(name, flags, static_cast<mode_t>(mode), value);
  if (sem == SEM_FAILED) return -errno;
  *out = sem;
  return 0;
}

int named_sem_close(void* sem) { return sem_close(as_sem(sem)) == 0 ? 0 : -errno; }

int named_sem_unlink(const char* name) { return sem_unlink(name) == 0 ? 0 : -errno; }

int named_sem_post(void* sem) { return sem_post(as_sem(sem)) == 0 ? 0 : -errno; }

int named_sem_wait(void* sem, int64_t timeout_ns) {
  if (timeout_ns < 0) {
    while (sem_wait(as_sem(sem)) != 0) {
      if (errno != EINTR) return -errno;
    }
    return 0;
  }
  // The deadline is absolute, so a retry after a signal keeps the original limit.
  if (ClockWait clockwait = find_clockwait()) {
    timespec deadline = deadline_on(CLOCK_MONOTONIC, timeout_ns);
    while (clockwait(as_sem(sem), CLOCK_MONOTONIC, &deadline) != 0) {
      if (errno != EINTR) return -errno;
    }
    return 0;
  }
  // Without it, sem_timedwait against CLOCK_REALTIME (POSIX): the same wait, except that
  // setting the system clock while it waits moves its end by as much.
  timespec deadline = deadline_on(CLOCK_REALTIME, timeout_ns);
  while (sem_timedwait(as_sem(sem), &deadline) != 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}

int named_sem_trywait(void* sem) {
  while (sem_trywait(as_sem(sem)) != 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}

int named_sem_value(void* sem) {
  int value = 0;
  return sem_getvalue(as_sem(sem), &value) == 0 ? value : -errno;
}

int named_sem_size() { return static_cast<int>(sizeof(sem_t)); }

int named_sem_state_size() {
  static const bool known = layout_is_known();
  return known ? static_cast<int>(sizeof(sem_t)) : 0;
}

}  // namespace mm
