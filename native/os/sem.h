// POSIX named semaphores (sem_overview(7)): the ones C programs open with sem_open, so that a
// memmap process and a C process can post and wait on the same name.
#ifndef MEMMAP_OS_SEM_H_
#define MEMMAP_OS_SEM_H_

#include <cstdint>

namespace mm {

// Opens (create: creating if missing; exclusive: failing with -EEXIST if present) the
// semaphore `name` ("/name"). `mode` and `value` apply only when it is created. Stores an
// opaque handle in *out; returns 0 or -errno.
int named_sem_open(const char* name, bool create, bool exclusive, int mode, unsigned value,
                   void** out);

// Closes a handle from named_sem_open (sem_close). The semaphore itself stays until unlinked.
int named_sem_close(void* sem);

// Removes the name (sem_unlink). Processes that have it open keep using it.
int named_sem_unlink(const char* name);

// Adds one and wakes a waiter. 0, or -EOVERFLOW at the largest value.
int named_sem_post(void* sem);

// Takes one, sleeping while the value is 0 for at most `timeout_ns` (< 0: no limit; measured
// on CLOCK_MONOTONIC). Resumes after signals. 0, -ETIMEDOUT, or -errno.
int named_sem_wait(void* sem, int64_t timeout_ns);

// Takes one if the value is above 0: 0, or -EAGAIN.
int named_sem_trywait(void* sem);

// The value now, or -errno.
int named_sem_value(void* sem);

// The size of a semaphore's state (sizeof(sem_t)): a file under a semaphore's name that is
// shorter holds no semaphore, and mapping it as one would fault.
int named_sem_size();

// The bytes of the semaphore's state in shared memory (sizeof(sem_t)), and whether their
// layout is the one glibc uses on 64-bit machines: a 64-bit word whose low 32 bits are the
// value (the word sem_post wakes, with a shared futex) and whose high 32 bits count the
// sleeping waiters. With that layout an asynchronous wait can sleep on the value word on
// memmap's waiter threads, exactly as sem_wait would. 0 when the layout is unknown here.
int named_sem_state_size();

}  // namespace mm

#endif  // MEMMAP_OS_SEM_H_
