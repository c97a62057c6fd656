// A robust lock word in shared memory, in the kernel's own vocabulary (include/uapi/linux/futex.h,
// Documentation/locking/robust-futex-ABI.rst): the word holds the owner's thread id in bits
// 0-29 (FUTEX_TID_MASK), bit 30 is FUTEX_OWNER_DIED (set only by the kernel, when the owner
// dies) and bit 31 is FUTEX_WAITERS (set by a waiter before it sleeps). 0 is free. One atomic
// operation writes the owner: there is no second store that a kill could separate from it.
//
// Owner death is the kernel's business: a lock record is linked into the calling thread's
// robust futex list, the list the C library already registered for that thread (glibc at
// thread start, musl at its first robust mutex), as get_robust_list(2) reports it. memmap never
// calls set_robust_list, which would take the list away from the C library. When a thread
// exits or dies, the kernel walks its list and, for each word that still holds the thread's id,
// sets FUTEX_OWNER_DIED (keeping FUTEX_WAITERS) and wakes one waiter, in any pid namespace.
//
// The record (kLockRecordSize bytes, 8-aligned) is laid out as:
//   [0, 4)    the lock word;
//   [4, 16)   for the caller (memmap keeps a marker and reserved words there);
//   [16, 64)  where the holder's robust list node goes: the list's `futex_offset` is the word's
//             distance from the node, so the node (a `next` pointer, preceded by the `prev`
//             pointer that glibc and musl keep 8 bytes before it) sits at word - futex_offset.
//             glibc on LP64 has -32 (node at 32, prev at 24), musl -28 (28 and 20). Only the
//             holder's thread reads or writes it, while it holds the lock.
#ifndef MEMMAP_OS_LOCK_H_
#define MEMMAP_OS_LOCK_H_

#include <cstddef>
#include <cstdint>

namespace mm {

constexpr uint32_t kWordWaiters = 0x80000000u;    // FUTEX_WAITERS
constexpr uint32_t kWordOwnerDied = 0x40000000u;  // FUTEX_OWNER_DIED
constexpr uint32_t kWordTidMask = 0x3fffffffu;    // FUTEX_TID_MASK
constexpr size_t kLockRecordSize = 64;

// What lock_try and lock_wait answer (or a negative errno).
constexpr int kLockAcquired = 0;
constexpr int kLockOwnerDied = 1;  // taken over from a dead owner
constexpr int kLockBusy = 2;       // another live thread holds it

// Takes the lock at `word` (the start of a record) if it is free or its owner died. With
// `waited`, the word keeps FUTEX_WAITERS (a thread that slept cannot know it was the last).
// Returns kLockAcquired, kLockOwnerDied, kLockBusy, -EDEADLK if this thread holds it,
// -ENOTSUP if this thread has no robust list, -ERANGE if its futex_offset does not fit the record.
int lock_try(uint32_t* word, bool waited);

// lock_try, sleeping while another thread holds the lock, for at most `timeout_ns` (< 0: no
// limit). Returns as lock_try, or -ETIMEDOUT. The thread's list_op_pending stays on the record
// while it sleeps, so that if it dies after a wake meant for it, the kernel passes the wake on;
// lock_wait_end clears it.
int lock_wait(uint32_t* word, int64_t timeout_ns);
void lock_wait_end();

// Releases the lock (held by this thread) and wakes one waiter if FUTEX_WAITERS was set.
// Returns 0, or -EPERM if this thread does not hold it.
int lock_release(uint32_t* word);

// Whether this thread holds the lock (its record is on this thread's list with its id).
bool lock_held(uint32_t* word);

// 0 if the calling thread can take locks, else as lock_try: -ENOTSUP (no robust list
// registered, even after the C library was asked to make one), -ERANGE, or get_robust_list's -errno.
int lock_usable();

// Hands on every lock the calling thread still holds as the kernel does when a thread dies:
// each word gets FUTEX_OWNER_DIED (keeping FUTEX_WAITERS) and one waiter is woken. For the
// end of a JavaScript environment, whose mappings go away before its thread does.
void lock_abandon_all();

// The same for the locks the calling thread holds in [base, base + size): memory about to be
// unmapped (a mapping closed by its holder), where the records must not stay on the list.
void lock_abandon_range(const void* base, size_t size);

// Whether the calling thread holds a lock whose word lies in [base, base + size) (of the
// first kHeldMax it holds: see lock_linux.cc).
bool lock_held_in(const void* base, size_t size);

// Test-only: makes the process stop itself (SIGSTOP) when it reaches step `step` of a lock
// operation (see the kLockStep* values in lock_linux.cc); 0 turns it off. Inert otherwise.
void lock_test_stop(int step);

}  // namespace mm

#endif  // MEMMAP_OS_LOCK_H_
