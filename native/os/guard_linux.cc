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
// - a slot publishes its range by storing everything else, then `start` with release order;
//   the handler loads `start` (acquire) first and skips slots whose start is 0 or claimed, so
//   it never sees a start without the rest;
// - a block is allocated before it is published into the chain, and blocks are never freed,
//   so a block pointer the handler loaded stays valid forever;
// - the handlers call only mmap, mprotect, mremap, munmap, fstat, gettid (plain system calls
//   on Linux; fstat is on POSIX's async-signal-safe list, the others are safe in practice),
//   memcpy, sigaction and raise, and save and restore errno around them.
//
// Repairs are made whole, never page by page: each MAP_FIXED page splits the kernel's
// mapping, and a process has at most vm.max_map_count (65,530) of them, so a repair per page
// would let a storm of faults end the process. A SIGBUS replaces everything from the file's
// new end (or the faulting page) to the end of the range at once; a SIGSEGV quarantines the
// whole range at once. A range then holds at most three kernel mappings, whatever the number
// of faults.
//
// Chaining: the handler that memmap displaced last gets every fault that is not memmap's. A
// handler installed after memmap that chains to its own previous handler (memmap's) would
// send a foreign fault back here; memmap notices the re-entry on that thread and sends the
// fault to the handler that was in place before memmap was ever installed, so every handler
// in the chain runs once and the fault ends where it would have without memmap.
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include <atomic>
#include <new>

#include "guard.h"
#include "mm.h"

namespace mm {

namespace {

constexpr int kSlotsPerBlock = 1024;
constexpr int kMaxBlocks = 4096;  // about four million live mappings
// A slot's start while a registration is filling it in; the handler skips it like a free one.
constexpr uintptr_t kClaimed = 1;
// Anonymous shared memory has no file to map privately, so a protection fault there copies
// the page; after this many copies in one range, the rest of the range is copied at once, so
// the copies cannot split the range into more than this many kernel mappings.
constexpr uint32_t kPageCopies = 64;

struct Slot {
  std::atomic<uintptr_t> start{0};  // 0: free; kClaimed: being filled in
  std::atomic<uintptr_t> end{0};
  std::atomic<int> fd{-1};
  std::atomic<uint64_t> file_offset{0};
  std::atomic<uintptr_t> granule{0};
  std::atomic<bool> writable{false};
  std::atomic<bool> shared{false};
  std::atomic<bool> restricted{false};  // protect() took rights away somewhere in the range
  // Where the zero memory that replaced lost pages begins (end: nothing was replaced).
  std::atomic<uintptr_t> lost{0};
  std::atomic<bool> quarantined{false};  // a protection fault made the whole range private
  std::atomic<uint32_t> copies{0};  // pages copied one at a time (anonymous shared memory)
  std::atomic<uint32_t> faults{0};  // SIGBUS absorbed: the file shrank or could not be read
  std::atomic<uint32_t> violations{0};  // SIGSEGV absorbed: an access the protection forbids
};

struct Block {
  Slot slots[kSlotsPerBlock];
};

static_assert(std::atomic<uintptr_t>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<int>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<bool>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<Block*>::is_always_lock_free, "the handler needs lock-free atomics");

std::atomic<Block*> g_blocks[kMaxBlocks];
std::atomic<uint64_t> g_absorbed{0};
std::atomic<uint64_t> g_violations{0};
GuardEpoch g_epoch = {0, 0};
// The page size, read before any handler can run: sysconf is not async-signal-safe.
uintptr_t g_page = 4096;
// For SIGBUS [0] and SIGSEGV [1]: the disposition memmap displaced most recently (the handler
// chained to), and the one in place before memmap was first installed (the end of the chain
// when a displaced handler chains back to memmap). Heap copies published by pointer, so a
// handler never reads a struct that is half written; old copies are never freed (a handler
// may still be reading one).
std::atomic<const struct sigaction*> g_previous[2];
std::atomic<const struct sigaction*> g_original[2];
// The threads now passing a foreign fault down the chain, by thread id (0: a free entry).
constexpr int kChainers = 64;
std::atomic<long> g_chaining[kChainers];

int index_of(int sig) { return sig == SIGBUS ? 0 : 1; }
// Where registration starts looking for a free slot.
std::atomic<int> g_hint{0};

Slot* slot_at(int id) {
  Block* block = g_blocks[id / kSlotsPerBlock].load(std::memory_order_acquire);
  return block == nullptr ? nullptr : &block->slots[id % kSlotsPerBlock];
}

void bump_epoch() { __atomic_fetch_add(&g_epoch.epoch, 1, __ATOMIC_RELEASE); }

// Hands the signal to `previous`, or gives it the default action.
void deliver(const struct sigaction* previous, int sig, siginfo_t* info, void* context) {
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

// Gives a fault that is not memmap's to whoever would have had it without memmap: the handler
// memmap displaced, or, when that handler chains back here on the same thread, the one that
// was there before memmap at all.
void chain(int sig, siginfo_t* info, void* context) {
  long tid = syscall(SYS_gettid);
  int mine = -1;
  bool reentered = false;
  for (int i = 0; i < kChainers; i++) {
    if (g_chaining[i].load(std::memory_order_acquire) == tid) reentered = true;
  }
  for (int i = 0; i < kChainers && !reentered && mine < 0; i++) {
    long expected = 0;
    if (g_chaining[i].compare_exchange_strong(expected, tid, std::memory_order_acq_rel)) mine = i;
  }
  int at = index_of(sig);
  // A full table (64 threads chaining at once) is treated like a re-entry: the original
  // handler cannot lead back here, so it is the safe end of the chain.
  const struct sigaction* target =
      reentered || mine < 0 ? g_original[at].load(std::memory_order_acquire) : g_previous[at].load(std::memory_order_acquire);
  deliver(target, sig, info, context);
  if (mine >= 0) g_chaining[mine].store(0, std::memory_order_release);
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

uintptr_t granule_of(const Slot* slot) {
  uintptr_t granule = slot->granule.load(std::memory_order_relaxed);
  return granule == 0 ? g_page : granule;
}

// Maps zero-filled private memory over [from, end). MAP_NORESERVE: it is charged to nothing
// until written.
bool zero_fill(uintptr_t from, uintptr_t end, int prot) {
  void* at = reinterpret_cast<void*>(from);
  return mmap(at, end - from, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) != MAP_FAILED;
}

// Lowers the slot's `lost` mark to `from` (it only ever moves down).
void lower_lost(Slot* slot, uintptr_t from) {
  uintptr_t current = slot->lost.load(std::memory_order_acquire);
  while (from < current && !slot->lost.compare_exchange_weak(current, from, std::memory_order_acq_rel)) {
  }
}

bool on_own_sigbus(Slot* slot, uintptr_t address) {
  uintptr_t start = slot->start.load(std::memory_order_acquire);
  uintptr_t end = slot->end.load(std::memory_order_acquire);
  uintptr_t granule = granule_of(slot);
  uintptr_t page = address & ~(granule - 1);
  if (page < start) page = start;
  // Everything from the file's new end on is gone; fstat says where that is. If the file is
  // no shorter (a page that could not be read), the loss starts at the faulting page.
  uintptr_t from = page;
  int fd = slot->fd.load(std::memory_order_acquire);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0) {
    uint64_t offset = slot->file_offset.load(std::memory_order_relaxed);
    uint64_t kept = static_cast<uint64_t>(st.st_size) > offset ? static_cast<uint64_t>(st.st_size) - offset : 0;
    uintptr_t eof = start + ((kept + granule - 1) & ~static_cast<uint64_t>(granule - 1));
    if (eof >= start && eof <= page) from = eof;
  }
  // SAFETY: [from, end) lies inside a range memmap mapped and still owns (a range is
  // unregistered before it is unmapped), so MAP_FIXED replaces only memmap's own pages. It
  // covers any zero memory mapped by an earlier fault, so the range keeps at most two kernel
  // mappings (file, then zeros) however often it faults. The zeros are read-only where the
  // range's mode or protect() forbids writes, so a stray write there is caught as well.
  bool readonly = !slot->quarantined.load(std::memory_order_acquire) &&
                  (!slot->writable.load(std::memory_order_relaxed) || slot->restricted.load(std::memory_order_relaxed));
  if (!zero_fill(from, end, PROT_READ | (readonly ? 0 : PROT_WRITE))) return false;
  lower_lost(slot, from);
  slot->faults.fetch_add(1, std::memory_order_relaxed);
  g_absorbed.fetch_add(1, std::memory_order_relaxed);
  bump_epoch();
  return true;
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  // si_code > 0: raised by the kernel for a memory access; <= 0: sent by kill, tgkill, raise
  // or sigqueue, which carry no address of ours.
  Slot* slot = info->si_code > 0 ? find_slot(reinterpret_cast<uintptr_t>(info->si_addr)) : nullptr;
  if (slot != nullptr && on_own_sigbus(slot, reinterpret_cast<uintptr_t>(info->si_addr))) {
    errno = saved_errno;
    return;  // the load or store is retried and now reads or writes zero memory
  }
  // Not ours, or out of memory for the repair: let the previous handler decide.
  chain(sig, info, context);
  errno = saved_errno;
}

// Puts a private, writable copy of [page, page + size) in its place: the pages are made
// readable, copied into fresh anonymous memory, and the copy is moved over them (mremap
// replaces the old pages in one step). Returns false if any step failed.
bool private_copy(uintptr_t page, size_t size) {
  void* at = reinterpret_cast<void*>(page);
  if (mprotect(at, size, PROT_READ) != 0) return false;
  void* copy = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (copy == MAP_FAILED) return false;
  // A page of a file that shrank raises SIGBUS here, which on_sigbus answers with zeros.
  memcpy(copy, at, size);
  if (mremap(copy, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, at) == MAP_FAILED) {
    munmap(copy, size);
    return false;
  }
  return true;
}

// Makes the whole range private and writable, so that no access there can fault again and
// none reaches the file: a copy-on-write mapping of the same file over a shared file range
// (reads still see the file's bytes), the same memory made writable where it is private
// already, and zero memory that replaced lost pages made writable.
bool quarantine(Slot* slot, uintptr_t address) {
  uintptr_t start = slot->start.load(std::memory_order_acquire);
  uintptr_t end = slot->end.load(std::memory_order_acquire);
  uintptr_t lost = slot->lost.load(std::memory_order_acquire);
  if (lost > end || lost < start) lost = end;
  int fd = slot->fd.load(std::memory_order_acquire);
  bool shared = slot->shared.load(std::memory_order_relaxed);
  uintptr_t granule = granule_of(slot);
  if (shared && fd < 0) {
    // Anonymous shared memory: no file to map privately. Copy the faulting page, or after
    // kPageCopies pages the whole range, so the copies stay few.
    if (slot->copies.fetch_add(1, std::memory_order_relaxed) < kPageCopies) {
      return private_copy(address & ~(granule - 1), granule);
    }
    if (!private_copy(start, end - start)) return false;
  } else if (lost > start) {
    void* at = reinterpret_cast<void*>(start);
    if (shared) {
      uint64_t offset = slot->file_offset.load(std::memory_order_relaxed);
      if (mmap(at, lost - start, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, static_cast<off_t>(offset)) ==
          MAP_FAILED) {
        return false;
      }
    } else if (mprotect(at, lost - start, PROT_READ | PROT_WRITE) != 0) {
      return false;
    }
  }
  if (lost < end && mprotect(reinterpret_cast<void*>(lost), end - lost, PROT_READ | PROT_WRITE) != 0) return false;
  slot->quarantined.store(true, std::memory_order_release);
  return true;
}

void on_sigsegv(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  // Only permission faults (SEGV_ACCERR) on memmap's own ranges: a write to a read-only page,
  // any access to a page protected 'none'. Everything else (a wild pointer, V8's WebAssembly
  // bounds traps, a stack overflow) goes to the handler installed before, as without memmap.
  uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
  Slot* slot = info->si_code == SEGV_ACCERR ? find_slot(address) : nullptr;
  // SAFETY: as in on_sigbus, the range is memmap's own. The stray access lands in private
  // memory, never in the file.
  if (slot != nullptr && quarantine(slot, address)) {
    slot->violations.fetch_add(1, std::memory_order_relaxed);
    g_violations.fetch_add(1, std::memory_order_relaxed);
    bump_epoch();
    errno = saved_errno;
    return;  // the access is retried on private memory
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
  int at = index_of(sig);
  const struct sigaction* none = nullptr;
  g_original[at].compare_exchange_strong(none, previous, std::memory_order_acq_rel);
  g_previous[at].store(previous, std::memory_order_release);
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

int guard_register(void* start, size_t length, const GuardRange& range) {
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
      uintptr_t end = reinterpret_cast<uintptr_t>(start) + length;
      slot->end.store(end, std::memory_order_release);
      slot->fd.store(range.fd, std::memory_order_relaxed);
      slot->file_offset.store(range.file_offset, std::memory_order_relaxed);
      slot->granule.store(range.granule, std::memory_order_relaxed);
      slot->writable.store(range.writable, std::memory_order_relaxed);
      slot->shared.store(range.shared, std::memory_order_relaxed);
      slot->restricted.store(false, std::memory_order_relaxed);
      slot->lost.store(end, std::memory_order_relaxed);
      slot->quarantined.store(false, std::memory_order_relaxed);
      slot->copies.store(0, std::memory_order_relaxed);
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
  uintptr_t end = reinterpret_cast<uintptr_t>(start) + length;
  slot->start.store(kClaimed, std::memory_order_release);
  slot->end.store(end, std::memory_order_release);
  slot->lost.store(end, std::memory_order_release);  // only a range that never faulted moves
  slot->start.store(reinterpret_cast<uintptr_t>(start), std::memory_order_release);
}

void guard_restricted(int slot_id) {
  Slot* slot = slot_at(slot_id);
  if (slot != nullptr) slot->restricted.store(true, std::memory_order_release);
}

void guard_unregister(int slot_id) {
  Slot* slot = slot_at(slot_id);
  if (slot == nullptr) return;
  slot->end.store(0, std::memory_order_release);
  slot->start.store(0, std::memory_order_release);
  slot->fd.store(-1, std::memory_order_release);
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

GuardEpoch* guard_epoch() { return &g_epoch; }

}  // namespace mm
