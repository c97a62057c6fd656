// Robust lock words over the kernel's robust futex list (lock.h). The list is the C library's:
// memmap links its records into it exactly as glibc's ENQUEUE_MUTEX_BOTH / DEQUEUE_MUTEX
// (nptl/descr.h) and musl's pthread_mutex_trylock / unlock do, so that the C library's own
// robust mutexes, memmap's records and the kernel's walk (kernel/futex/core.c,
// exit_robust_list) all agree:
//   - an entry is the address of a node's `next` field; `prev` is the pointer just before it;
//   - `next` points at the next entry, or back at the head (&head->list) at the end;
//   - `prev` points at the previous entry, or at the head;
//   - bit 0 of a pointer marks a PI mutex (glibc's); it is masked off when following it.
// The kernel reads the list when the thread exits or dies, as a signal handler would: an
// entry is complete before the head points at it, and each step of lock and unlock keeps the
// list whole (the compiler barriers below keep the stores in program order).
//
// The steps of the ABI (Documentation/locking/robust-futex-ABI.rst), and why a kill at any
// point between them leaves the lock usable:
//   lock:   pending = node; CAS word 0 -> tid; link node; pending = 0.
//           Killed before the CAS: the word lacks our tid, the kernel leaves it. Between the
//           CAS and the link: the kernel finds the word through `pending` and marks it.
//   unlock: pending = node; unlink node; exchange word -> 0; wake one if WAITERS; pending = 0.
//           Killed before the exchange: found through `pending`, marked OWNER_DIED. After it:
//           the word is 0 with `pending` set, and the kernel (since Linux 5.6) wakes a waiter.
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "futex.h"
#include "lock.h"

namespace mm {

namespace {

// The kernel's struct robust_list_head (include/uapi/linux/futex.h).
struct RobustHead {
  void* list;
  long futex_offset;
  void* list_op_pending;
};

// The steps a test can stop at (lock_test_stop).
enum Step {
  kLockStepPending = 1,      // lock: pending set, before the CAS
  kLockStepTaken = 2,        // lock: CAS done, node not linked
  kLockStepLinked = 3,       // lock: linked, pending still set
  kUnlockStepPending = 4,    // unlock: pending set, still linked
  kUnlockStepUnlinked = 5,   // unlock: unlinked, word still ours
  kUnlockStepReleased = 6,   // unlock: word 0, waiter not woken
  kUnlockStepWoken = 7,      // unlock: waiter woken, pending still set
  kLockStepTakenOver = 8,    // lock: CAS from OWNER_DIED done, node not linked
  kLockStepWoken = 9,        // lock_wait: woken, before trying again
};

std::atomic<int> g_stop_step{0};

inline void step(int at) {
  if (__builtin_expect(g_stop_step.load(std::memory_order_relaxed) == at, 0)) raise(SIGSTOP);
}

inline void barrier() { std::atomic_signal_fence(std::memory_order_seq_cst); }

constexpr int kListLimit = 2048;  // the kernel's ROBUST_LIST_LIMIT

// Per thread: the robust list head the C library registered, and the thread id (gettid is a
// system call; a fork() child refreshes both, see forget_in_child).
struct ThreadLists {
  bool known = false;
  RobustHead* head = nullptr;
  long error = 0;
  uint32_t tid = 0;
};

thread_local ThreadLists t_lists;

// Per thread: the words it holds, so that lock_abandon_all can hand them on when the thread's
// JavaScript environment goes away (its mappings are unmapped then, before the thread exits,
// and the kernel's walk would find the records gone). Beyond kHeldMax the extra locks are only
// the kernel's to hand on.
constexpr int kHeldMax = 64;
struct Held {
  uint32_t* words[kHeldMax];
  int count = 0;
};
thread_local Held t_held;

void remember(uint32_t* word) {
  if (t_held.count < kHeldMax) t_held.words[t_held.count++] = word;
}

void forget(uint32_t* word) {
  for (int i = t_held.count - 1; i >= 0; i--) {
    if (t_held.words[i] == word) {
      t_held.words[i] = t_held.words[--t_held.count];
      return;
    }
  }
}

void forget_in_child() {
  t_lists = ThreadLists();
  t_held.count = 0;
}

RobustHead* query_head(long* error) {
  void* head = nullptr;
  size_t length = 0;
  if (syscall(SYS_get_robust_list, 0, &head, &length) != 0) {
    *error = -errno;
    return nullptr;
  }
  if (head == nullptr || length < sizeof(RobustHead)) {
    *error = -ENOTSUP;
    return nullptr;
  }
  return static_cast<RobustHead*>(head);
}

// The calling thread's list. glibc registers one for every thread it starts; musl only at the
// thread's first robust mutex, so where there is none yet, locking a robust mutex of the C
// library's own once makes it register its list (memmap never registers one itself).
RobustHead* thread_head(long* error) {
  ThreadLists& t = t_lists;
  if (__builtin_expect(t.known, 1)) {
    *error = t.error;
    return t.head;
  }
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, [] { pthread_atfork(nullptr, nullptr, forget_in_child); });
  t.tid = static_cast<uint32_t>(syscall(SYS_gettid));
  long err = 0;
  RobustHead* head = query_head(&err);
  if (head == nullptr && err == -ENOTSUP) {
    pthread_mutexattr_t attr;
    pthread_mutex_t primer;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(&primer, &attr) == 0) {
      if (pthread_mutex_lock(&primer) == 0) pthread_mutex_unlock(&primer);
      pthread_mutex_destroy(&primer);
    }
    pthread_mutexattr_destroy(&attr);
    head = query_head(&err);
  }
  // The node (and the prev pointer before it) must fall inside the record's list area.
  if (head != nullptr && (-head->futex_offset < 24 || -head->futex_offset > 56)) {
    head = nullptr;
    err = -ERANGE;
  }
  t.head = head;
  t.error = head == nullptr ? err : 0;
  t.known = true;
  *error = t.error;
  return head;
}

inline void** node_of(uint32_t* word, const RobustHead* head) {
  return reinterpret_cast<void**>(reinterpret_cast<char*>(word) - head->futex_offset);
}

inline void** strip(void* entry) {
  return reinterpret_cast<void**>(reinterpret_cast<uintptr_t>(entry) & ~uintptr_t{1});
}

// Puts `node` first on the list (glibc's ENQUEUE_MUTEX_BOTH): complete the node, fix the old
// first entry's prev, and only then point the head at it.
void link(RobustHead* head, void** node) {
  void** first = strip(head->list);
  node[0] = head->list;
  node[-1] = &head->list;
  if (first != reinterpret_cast<void**>(&head->list)) first[-1] = node;
  barrier();
  head->list = node;
  barrier();
}

// Finds the pointer that leads to `node` on this thread's list (normally the head itself),
// walking no further than the kernel would; null if the node is not there.
void** find(RobustHead* head, void** node) {
  void** at = reinterpret_cast<void**>(&head->list);
  for (int i = 0; i < kListLimit; i++) {
    void** entry = strip(*at);
    if (entry == node) return at;
    if (entry == reinterpret_cast<void**>(&head->list) || entry == nullptr) return nullptr;
    at = entry;
  }
  return nullptr;
}

// Takes `node` off the list; `at` is the pointer leading to it (from find). The pointer to the
// next entry is copied into `at` in one store, so the list is whole at every step.
void unlink(RobustHead* head, void** at, void** node) {
  void* next = node[0];
  *at = next;
  void** after = strip(next);
  if (after != reinterpret_cast<void**>(&head->list) && after != nullptr) after[-1] = at;
  barrier();
  node[0] = nullptr;
  node[-1] = nullptr;
}

inline void set_pending(RobustHead* head, void* node) {
  barrier();
  head->list_op_pending = node;
  barrier();
}

// One try, with `pending` already on the node. Leaves `pending` set unless it took the lock.
int try_locked(RobustHead* head, uint32_t* word, uint32_t tid, bool waited, uint32_t* seen) {
  void** node = node_of(word, head);
  uint32_t value = 0;
  for (;;) {
    if (__atomic_compare_exchange_n(word, &value, tid | (waited ? kWordWaiters : 0), false, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED)) {
      step(kLockStepTaken);
      link(head, node);
      remember(word);
      step(kLockStepLinked);
      set_pending(head, nullptr);
      return kLockAcquired;
    }
    // `value` now holds what the word held (the failed CAS refreshed it, glibc BZ #21778).
    if (value & kWordOwnerDied) {
      // The kernel marked the owner dead. Take it over, keeping WAITERS for the others.
      uint32_t dead = value;
      if (__atomic_compare_exchange_n(word, &value, tid | (dead & kWordWaiters), false, __ATOMIC_ACQUIRE,
                                      __ATOMIC_RELAXED)) {
        step(kLockStepTakenOver);
        link(head, node);
        remember(word);
        set_pending(head, nullptr);
        return kLockOwnerDied;
      }
      continue;
    }
    if ((value & kWordTidMask) == 0) {
      // Free but for a stale WAITERS bit: take it, keeping the bit.
      if (__atomic_compare_exchange_n(word, &value, tid | value, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        step(kLockStepTaken);
        link(head, node);
        remember(word);
        set_pending(head, nullptr);
        return kLockAcquired;
      }
      continue;
    }
    // The same id can be a thread of another pid namespace: it is ours only if our list has it.
    if ((value & kWordTidMask) == tid && find(head, node) != nullptr) return -EDEADLK;
    *seen = value;
    return kLockBusy;
  }
}

}  // namespace

int lock_try(uint32_t* word, bool waited) {
  long error = 0;
  RobustHead* head = thread_head(&error);
  if (head == nullptr) return static_cast<int>(error);
  set_pending(head, node_of(word, head));
  step(kLockStepPending);
  uint32_t seen = 0;
  int rc = try_locked(head, word, t_lists.tid, waited, &seen);
  if (rc != kLockAcquired && rc != kLockOwnerDied) set_pending(head, nullptr);
  return rc;
}

int lock_wait(uint32_t* word, int64_t timeout_ns) {
  long error = 0;
  RobustHead* head = thread_head(&error);
  if (head == nullptr) return static_cast<int>(error);
  int64_t deadline = timeout_ns < 0 ? -1 : monotonic_ns() + timeout_ns;
  set_pending(head, node_of(word, head));
  step(kLockStepPending);
  bool waited = false;
  for (;;) {
    uint32_t seen = 0;
    int rc = try_locked(head, word, t_lists.tid, waited, &seen);
    if (rc != kLockBusy) {
      if (rc < 0) set_pending(head, nullptr);
      return rc;
    }
    // Announce the wait, then sleep while the word is unchanged.
    if (!(seen & kWordWaiters)) {
      if (!__atomic_compare_exchange_n(word, &seen, seen | kWordWaiters, false, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED)) {
        continue;
      }
      seen |= kWordWaiters;
    }
    int64_t left = -1;
    if (deadline >= 0) {
      left = deadline - monotonic_ns();
      if (left <= 0) return -ETIMEDOUT;
    }
    int woken = word_wait(word, seen, left);
    waited = true;
    if (woken == 0) step(kLockStepWoken);
    if (woken == -ETIMEDOUT) return -ETIMEDOUT;
    if (woken != 0 && woken != -EAGAIN && woken != -EINTR) {
      set_pending(head, nullptr);
      return woken;
    }
  }
}

void lock_wait_end() {
  if (t_lists.known && t_lists.head != nullptr) set_pending(t_lists.head, nullptr);
}

int lock_release(uint32_t* word) {
  long error = 0;
  RobustHead* head = thread_head(&error);
  if (head == nullptr) return -EPERM;
  uint32_t value = __atomic_load_n(word, __ATOMIC_RELAXED);
  void** node = node_of(word, head);
  if ((value & kWordTidMask) != t_lists.tid) return -EPERM;
  void** at = find(head, node);
  if (at == nullptr) return -EPERM;
  set_pending(head, node);
  step(kUnlockStepPending);
  unlink(head, at, node);
  forget(word);
  step(kUnlockStepUnlinked);
  uint32_t previous = __atomic_exchange_n(word, 0, __ATOMIC_RELEASE);
  step(kUnlockStepReleased);
  if (previous & kWordWaiters) word_wake(word, 1);
  step(kUnlockStepWoken);
  set_pending(head, nullptr);
  return 0;
}

bool lock_held(uint32_t* word) {
  long error = 0;
  RobustHead* head = thread_head(&error);
  if (head == nullptr) return false;
  uint32_t value = __atomic_load_n(word, __ATOMIC_RELAXED);
  return (value & kWordTidMask) == t_lists.tid && find(head, node_of(word, head)) != nullptr;
}

int lock_usable() {
  long error = 0;
  return thread_head(&error) == nullptr ? static_cast<int>(error) : 0;
}

namespace {

// Hands on the lock t_held.words[i] as a dying thread's would be, and forgets it.
void abandon(RobustHead* head, int i) {
  uint32_t* word = t_held.words[i];
  void** node = node_of(word, head);
  void** at = find(head, node);
  set_pending(head, node);
  if (at != nullptr) unlink(head, at, node);
  t_held.words[i] = t_held.words[--t_held.count];
  // As the kernel's handle_futex_death does: keep WAITERS, set OWNER_DIED, wake one.
  uint32_t value = __atomic_load_n(word, __ATOMIC_RELAXED);
  while ((value & kWordTidMask) == t_lists.tid) {
    uint32_t dead = (value & kWordWaiters) | kWordOwnerDied;
    if (__atomic_compare_exchange_n(word, &value, dead, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED)) {
      if (value & kWordWaiters) word_wake(word, 1);
      break;
    }
  }
  set_pending(head, nullptr);
}

}  // namespace

void lock_abandon_all() {
  if (!t_lists.known || t_lists.head == nullptr) return;
  while (t_held.count > 0) abandon(t_lists.head, t_held.count - 1);
}

bool lock_held_in(const void* base, size_t size) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(base);
  for (int i = 0; i < t_held.count; i++) {
    if (reinterpret_cast<uintptr_t>(t_held.words[i]) - begin < size) return true;
  }
  return false;
}

void lock_abandon_range(const void* base, size_t size) {
  if (!t_lists.known || t_lists.head == nullptr) return;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(base);
  for (int i = t_held.count - 1; i >= 0; i--) {
    if (reinterpret_cast<uintptr_t>(t_held.words[i]) - begin < size) abandon(t_lists.head, i);
  }
}

void lock_test_stop(int at) { g_stop_step.store(at, std::memory_order_relaxed); }

}  // namespace mm
