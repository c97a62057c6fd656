// The Linux fault guard (guard.h). Everything the signal handlers touch is decided here, so
// every async-signal-safety argument is in this one file.
//
// The registry is a list of fixed-size blocks of slots, linked by atomic pointers and never
// freed. Registering and unregistering happen on JavaScript threads; the handler runs on
// whichever thread faulted, at any instruction, possibly while a registration is half done.
// So:
// - the handler reads only std::atomic values that are lock-free (checked below), never takes
//   a lock and never allocates: a lock held by the interrupted thread would deadlock it, and
//   malloc is not reentrant;
// - a slot publishes its range by storing `end`, then `start` with release order; the handler
//   loads `start` (acquire) first and skips slots whose start is 0, so it never sees a start
//   without its end;
// - a block is allocated before it is published into the chain, and blocks are never freed,
//   so a block pointer the handler loaded stays valid forever;
// - the handlers call only mmap, mprotect, mremap and munmap (plain system calls on Linux, safe
//   in a handler in practice though POSIX does not list them), memcpy, sigaction and raise
//   (on POSIX's async-signal-safe list), and save and restore errno around them.
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include <atomic>
#include <new>

#include "guard.h"
#include "mm.h"

namespace mm {

namespace {

constexpr int kSlotsPerBlock = 1024;
constexpr int kMaxBlocks = 4096;  // about four million live file mappings
// A slot's start while a registration is filling it in; the handler skips it like a free one.
constexpr uintptr_t kClaimed = 1;

struct Slot {
  std::atomic<uintptr_t> start{0};  // 0: free; kClaimed: being filled in
  std::atomic<uintptr_t> end{0};
  std::atomic<bool> writable{false};
  std::atomic<uint32_t> faults{0};  // SIGBUS absorbed: the file shrank or could not be read
  std::atomic<uint32_t> violations{0};  // SIGSEGV absorbed: an access the protection forbids
};

struct Block {
  Slot slots[kSlotsPerBlock];
};

static_assert(std::atomic<uintptr_t>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<Block*>::is_always_lock_free, "the handler needs lock-free atomics");

std::atomic<Block*> g_blocks[kMaxBlocks];
std::atomic<uint64_t> g_absorbed{0};
std::atomic<uint64_t> g_violations{0};
// The page size, read before any handler can run: sysconf is not async-signal-safe.
uintptr_t g_page = 4096;
// The dispositions that were in place before memmap's, for SIGBUS [0] and SIGSEGV [1]: heap
// copies published by pointer, so a handler never reads a struct that is half written. Old
// copies are never freed (a handler may still be reading one).
std::atomic<const struct sigaction*> g_previous[2];

int index_of(int sig) { return sig == SIGBUS ? 0 : 1; }
// Where registration starts looking for a free slot.
std::atomic<int> g_hint{0};

Slot* slot_at(int id) {
  Block* block = g_blocks[id / kSlotsPerBlock].load(std::memory_order_acquire);
  return block == nullptr ? nullptr : &block->slots[id % kSlotsPerBlock];
}

// Gives the signal to whoever would have had it without memmap.
void chain(int sig, siginfo_t* info, void* context) {
  const struct sigaction* previous = g_previous[index_of(sig)].load(std::memory_order_acquire);
  if (previous != nullptr && (previous->sa_flags & SA_SIGINFO) && previous->sa_sigaction != nullptr) {
    previous->sa_sigaction(sig, info, context);
    return;
  }
  void (*handler)(int) = previous == nullptr ? SIG_DFL : previous->sa_handler;
  if (handler == SIG_IGN && info->si_code <= 0) return;  // a sent signal the program ignores
  if (handler == SIG_DFL || handler == SIG_IGN) {
    // Restore the default action and let it happen: a fault re-executes the instruction when
    // the handler returns and faults again; a sent signal is raised again, stays pending while
    // this handler blocks it, and is delivered as the handler returns. Either way the process
    // ends by the signal, as it would have without memmap. (A faulting SIGBUS or SIGSEGV
    // cannot be ignored: the kernel would deliver it again at once.)
    struct sigaction fallback = {};
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(sig, &fallback, nullptr);
    if (info->si_code <= 0) raise(sig);
    return;
  }
  handler(sig);
}

// The registered slot whose range holds `address`, or nullptr.
Slot* find_slot(uintptr_t address) {
  for (int b = 0; b < kMaxBlocks; b++) {
    Block* block = g_blocks[b].load(std::memory_order_acquire);
    if (block == nullptr) return nullptr;
    for (Slot& slot : block->slots) {
      uintptr_t start = slot.start.load(std::memory_order_acquire);
      if (start > kClaimed && address >= start && address < slot.end.load(std::memory_order_acquire)) {
        return &slot;
      }
    }
  }
  return nullptr;
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  // si_code > 0: raised by the kernel for a memory access; <= 0: sent by kill, tgkill, raise
  // or sigqueue, which carry no address of ours.
  Slot* slot = info->si_code > 0 ? find_slot(reinterpret_cast<uintptr_t>(info->si_addr)) : nullptr;
  if (slot != nullptr) {
    // SAFETY: the page lies inside a range memmap mapped and still owns (a range is
    // unregistered before it is unmapped), so MAP_FIXED replaces only memmap's own page.
    int prot = PROT_READ | (slot->writable.load(std::memory_order_relaxed) ? PROT_WRITE : 0);
    void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(info->si_addr) & ~(g_page - 1));
    if (mmap(page, g_page, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
      slot->faults.fetch_add(1, std::memory_order_relaxed);
      g_absorbed.fetch_add(1, std::memory_order_relaxed);
      errno = saved_errno;
      return;  // the load or store is retried and now reads or writes the zero page
    }
    // Out of memory for even one page: let the previous handler decide.
  }
  chain(sig, info, context);
  errno = saved_errno;
}

// Puts a private, writable copy of a page in its place: the page is made readable, copied
// into a fresh anonymous page, and the copy is moved over it (mremap replaces the old page in
// one step). Returns false if any step failed; the page may then be readable, no more.
bool private_copy(void* page) {
  if (mprotect(page, g_page, PROT_READ) != 0) return false;
  void* copy = mmap(nullptr, g_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (copy == MAP_FAILED) return false;
  // A page of a file that shrank raises SIGBUS here, which on_sigbus answers with zeros.
  memcpy(copy, page, g_page);
  if (mremap(copy, g_page, g_page, MREMAP_MAYMOVE | MREMAP_FIXED, page) == MAP_FAILED) {
    munmap(copy, g_page);
    return false;
  }
  return true;
}

void on_sigsegv(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  // Only permission faults (SEGV_ACCERR) on memmap's own ranges: a write to a read-only page,
  // any access to a page protected 'none'. Everything else (a wild pointer, V8's WebAssembly
  // bounds traps, a stack overflow) goes to the handler installed before, as without memmap.
  Slot* slot = info->si_code == SEGV_ACCERR ? find_slot(reinterpret_cast<uintptr_t>(info->si_addr)) : nullptr;
  if (slot != nullptr) {
    // SAFETY: as in on_sigbus, the page is memmap's own. The stray access lands in the copy,
    // never in the file.
    void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(info->si_addr) & ~(g_page - 1));
    if (private_copy(page)) {
      slot->violations.fetch_add(1, std::memory_order_relaxed);
      g_violations.fetch_add(1, std::memory_order_relaxed);
      errno = saved_errno;
      return;  // the access is retried on the copy
    }
  }
  chain(sig, info, context);
  errno = saved_errno;
}

// Installs `handler` for `sig` unless it is in place, remembering what was there.
int install(int sig, void (*handler)(int, siginfo_t*, void*)) {
  struct sigaction current = {};
  if (sigaction(sig, nullptr, &current) != 0) return -errno;
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == handler) return 0;
  const struct sigaction* previous = new (std::nothrow) struct sigaction(current);
  if (previous == nullptr) return -ENOMEM;
  g_previous[index_of(sig)].store(previous, std::memory_order_release);
  struct sigaction ours = {};
  ours.sa_sigaction = handler;
  // SA_ONSTACK: run on the thread's alternate signal stack when it has one. SA_NODEFER is not
  // set, so the same signal raised inside the handler waits until it returns; the other one
  // (a SIGBUS while copying a page for SIGSEGV) is handled at once.
  ours.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&ours.sa_mask);
  if (sigaction(sig, &ours, nullptr) != 0) return -errno;
  return 0;
}

}  // namespace

int guard_install() {
  g_page = static_cast<uintptr_t>(page_size());
  int rc = install(SIGBUS, on_sigbus);
  return rc < 0 ? rc : install(SIGSEGV, on_sigsegv);
}

int guard_register(void* start, size_t length, bool writable) {
  int first = g_hint.load(std::memory_order_relaxed);
  for (int pass = 0; pass < 2; pass++) {
    for (int id = pass == 0 ? first : 0; id < kMaxBlocks * kSlotsPerBlock; id++) {
      if (pass == 1 && id >= first) break;
      Slot* slot = slot_at(id);
      if (slot == nullptr) {
        // Publish a new block; if another thread published one first, use theirs.
        Block* fresh = new (std::nothrow) Block();
        if (fresh == nullptr) return -ENOMEM;
        Block* expected = nullptr;
        if (!g_blocks[id / kSlotsPerBlock].compare_exchange_strong(expected, fresh)) delete fresh;
        slot = slot_at(id);
      }
      uintptr_t expected = 0;
      // Claim the slot (the handler skips claimed slots), fill it in, then publish the start.
      if (!slot->start.compare_exchange_strong(expected, kClaimed, std::memory_order_acq_rel)) {
        continue;
      }
      slot->end.store(reinterpret_cast<uintptr_t>(start) + length, std::memory_order_release);
      slot->writable.store(writable, std::memory_order_relaxed);
      slot->faults.store(0, std::memory_order_relaxed);
      slot->violations.store(0, std::memory_order_relaxed);
      slot->start.store(reinterpret_cast<uintptr_t>(start), std::memory_order_release);
      g_hint.store(id + 1, std::memory_order_relaxed);
      return id;
    }
  }
  return -ENOMEM;
}

void guard_move(int slot_id, void* start, size_t length) {
  Slot* slot = slot_at(slot_id);
  if (slot == nullptr) return;
  // Claimed while it changes, so the handler never pairs the new start with the old end.
  slot->start.store(kClaimed, std::memory_order_release);
  slot->end.store(reinterpret_cast<uintptr_t>(start) + length, std::memory_order_release);
  slot->start.store(reinterpret_cast<uintptr_t>(start), std::memory_order_release);
}

void guard_unregister(int slot_id) {
  Slot* slot = slot_at(slot_id);
  if (slot == nullptr) return;
  slot->end.store(0, std::memory_order_release);
  slot->start.store(0, std::memory_order_release);
  int hint = g_hint.load(std::memory_order_relaxed);
  if (slot_id < hint) g_hint.store(slot_id, std::memory_order_relaxed);
}

uint32_t guard_faults(int slot_id) {
  Slot* slot = slot_at(slot_id);
  return slot == nullptr ? 0 : slot->faults.load(std::memory_order_relaxed);
}

uint64_t guard_absorbed_total() { return g_absorbed.load(std::memory_order_relaxed); }

uint32_t guard_violations(int slot_id) {
  Slot* slot = slot_at(slot_id);
  return slot == nullptr ? 0 : slot->violations.load(std::memory_order_relaxed);
}

uint64_t guard_violations_total() { return g_violations.load(std::memory_order_relaxed); }

}  // namespace mm
