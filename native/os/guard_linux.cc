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
// A repair never races a change of the registry: the handler announces itself in the slot's
// `busy` count, then checks that the slot still holds the range it found (same start, end and
// generation); guard_unregister and guard_move clear the start, then wait until `busy` is 0.
// The handler's repair makes a few system calls and never runs foreign code, so the wait is
// short.
//
// Chaining: memmap keeps the dispositions it displaced, oldest first (the first is what was
// there before memmap). A fault that is not memmap's goes to the one displaced last. Two ways
// a handler can send it back, and what memmap does, so that each handler runs once and the
// fault ends where it would have without memmap instead of looping:
// - it chains to its own previous handler, which is memmap's: a call nested inside the
//   delivery, on the same thread, for the same fault (a deeper stack frame). memmap passes it
//   one step further down the list;
// - it returns without repairing anything or moving the program counter (a crash reporter
//   that puts its predecessor back and returns, libuv's handler for a JavaScript listener):
//   the instruction faults again at once, at the same address and program counter. memmap
//   passes it one step further down too, and below the oldest handler is the default action.
// A handler that leaves by siglongjmp leaves its record behind; the next fault on that thread
// is told apart by its address or its shallower frame.
#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
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
// Faults that are not truncations (a page that could not be read, a full tmpfs, a huge page
// the pool could not supply) and protection faults in anonymous shared memory (no file to map
// privately) are repaired one page at a time, so valid data beside them is kept; after this
// many in one range the rest of the range is repaired at once, so the repairs cannot split
// the range into more than about twice this many kernel mappings.
constexpr uint32_t kPageRepairs = 64;

struct Slot {
  std::atomic<uintptr_t> start{0};  // 0: free; kClaimed: being filled in
  std::atomic<uintptr_t> end{0};
  std::atomic<uint32_t> generation{0};  // changes with every registration
  std::atomic<int> busy{0};  // handlers repairing the range now
  std::atomic<int> fd{-1};
  std::atomic<uint64_t> file_offset{0};
  std::atomic<uintptr_t> granule{0};
  std::atomic<bool> writable{false};
  std::atomic<bool> shared{false};
  std::atomic<bool> restricted{false};  // protect() took rights away somewhere in the range
  // Where the zero memory that replaced lost pages begins (end: nothing was replaced).
  std::atomic<uintptr_t> lost{0};
  std::atomic<bool> quarantined{false};  // a protection fault made the whole range private
  std::atomic<uint32_t> holes{0};  // single pages repaired (read errors)
  std::atomic<uint32_t> copies{0};  // pages copied one at a time (anonymous shared memory)
  std::atomic<uint32_t> faults{0};  // SIGBUS absorbed: the file shrank or could not be read
  std::atomic<uint32_t> violations{0};  // SIGSEGV absorbed: an access the protection forbids
  // The first fault absorbed: its FaultKind (0: none yet, or being written), where in the
  // range, and when (CLOCK_REALTIME, ns). The kind is stored last, with release.
  std::atomic<uint32_t> first_kind{0};
  std::atomic<uint64_t> first_offset{0};
  std::atomic<int64_t> first_time{0};
  std::atomic<bool> first_claimed{false};
};

struct Block {
  Slot slots[kSlotsPerBlock];
};

static_assert(std::atomic<uintptr_t>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<int>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<long>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<bool>::is_always_lock_free, "the handler needs lock-free atomics");
static_assert(std::atomic<Block*>::is_always_lock_free, "the handler needs lock-free atomics");

std::atomic<Block*> g_blocks[kMaxBlocks];
std::atomic<uint64_t> g_absorbed{0};
std::atomic<uint64_t> g_violations{0};
GuardEpoch g_epoch = {0, 0};
// The page size, read before any handler can run: sysconf is not async-signal-safe.
uintptr_t g_page = 4096;

// For SIGBUS [0] and SIGSEGV [1]: the dispositions memmap displaced, oldest first. Heap copies
// published by pointer, so a handler never reads a struct that is half written; copies are
// never freed (a handler may still be reading one).
constexpr int kDisplaced = 16;
std::atomic<const struct sigaction*> g_displaced[2][kDisplaced];
std::atomic<int> g_displaced_count[2];

// What memmap last handed down the chain on a thread, to tell a handler that sends the fault
// back from a new fault.
struct Chainer {
  std::atomic<long> tid{0};  // 0: a free record
  std::atomic<int> sig{0};
  std::atomic<uintptr_t> address{0};  // the fault's address
  std::atomic<uintptr_t> pc{0};  // the program counter at the fault
  std::atomic<int> depth{0};  // how many handlers down the list it went
  std::atomic<uintptr_t> frame{0};  // a stack address of the delivery in progress, 0: none
  std::atomic<bool> unrepaired{false};  // the handler returned with the program counter unmoved
};
constexpr int kChainers = 64;
Chainer g_chainers[kChainers];

int index_of(int sig) { return sig == SIGBUS ? 0 : 1; }
// Where registration starts looking for a free slot.
std::atomic<int> g_hint{0};

Slot* slot_at(int id) {
  Block* block = g_blocks[id / kSlotsPerBlock].load(std::memory_order_acquire);
  return block == nullptr ? nullptr : &block->slots[id % kSlotsPerBlock];
}

void bump_epoch() { __atomic_fetch_add(&g_epoch.epoch, 1, __ATOMIC_RELEASE); }

// The program counter of an interrupted context, or 0 where memmap does not know the layout.
uintptr_t pc_of(void* context) {
  if (context == nullptr) return 0;
  const ucontext_t* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  return static_cast<uintptr_t>(uc->uc_mcontext.pc);
#else
  (void)uc;
  return 0;
#endif
}

// Hands the signal to `previous`, or gives it the default action.
void deliver(const struct sigaction* previous, int sig, siginfo_t* info, void* context) {
  void (*handler)(int) = previous == nullptr ? SIG_DFL : previous->sa_handler;
  // SIG_DFL and SIG_IGN are values, not functions, even where SA_SIGINFO is set.
  if (handler != SIG_DFL && handler != SIG_IGN) {
    if (previous->sa_flags & SA_SIGINFO) {
      previous->sa_sigaction(sig, info, context);
    } else {
      handler(sig);
    }
    return;
  }
  if (handler == SIG_IGN && info->si_code <= 0) return;  // a sent signal the program ignores
  // Restore the default action and let it happen: a fault re-executes the instruction when
  // the handler returns and faults again; a sent signal is raised again, stays pending while
  // this handler blocks it, and is delivered as the handler returns. Either way the process
  // ends by the signal, as it would have without memmap. (A faulting SIGBUS or SIGSEGV cannot
  // be ignored: the kernel would deliver it again at once.)
  struct sigaction fallback = {};
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(sig, &fallback, nullptr);
  if (info->si_code <= 0) raise(sig);
}

Chainer* chainer_for(long tid) {
  for (Chainer& c : g_chainers) {
    if (c.tid.load(std::memory_order_acquire) == tid) return &c;
  }
  for (Chainer& c : g_chainers) {
    long expected = 0;
    if (c.tid.compare_exchange_strong(expected, tid, std::memory_order_acq_rel)) return &c;
  }
  return nullptr;
}

// Gives a fault that is not memmap's to whoever would have had it without memmap (see the
// top of this file).
void chain(int sig, siginfo_t* info, void* context) {
  int at = index_of(sig);
  int count = g_displaced_count[at].load(std::memory_order_acquire);
  uintptr_t here = reinterpret_cast<uintptr_t>(&count);
  uintptr_t address = info->si_code > 0 ? reinterpret_cast<uintptr_t>(info->si_addr) : 0;
  uintptr_t pc = pc_of(context);
  Chainer* c = chainer_for(syscall(SYS_gettid));
  if (c == nullptr) {
    // 64 threads chaining at once: the oldest handler cannot lead back here.
    deliver(count > 0 ? g_displaced[at][0].load(std::memory_order_acquire) : nullptr, sig, info, context);
    return;
  }
  bool same = c->sig.load(std::memory_order_relaxed) == sig && c->address.load(std::memory_order_relaxed) == address;
  uintptr_t active = c->frame.load(std::memory_order_acquire);
  int depth = 0;
  if (active != 0 && same && here < active) {
    depth = c->depth.load(std::memory_order_relaxed) + 1;  // sent back from inside the delivery
  } else if (active == 0 && same && address != 0 && pc != 0 && c->unrepaired.load(std::memory_order_relaxed) &&
             c->pc.load(std::memory_order_relaxed) == pc) {
    depth = c->depth.load(std::memory_order_relaxed) + 1;  // came straight back, unrepaired
  }
  int saved_depth = c->depth.load(std::memory_order_relaxed);
  c->sig.store(sig, std::memory_order_relaxed);
  c->address.store(address, std::memory_order_relaxed);
  c->pc.store(pc, std::memory_order_relaxed);
  c->depth.store(depth, std::memory_order_relaxed);
  c->unrepaired.store(false, std::memory_order_relaxed);
  c->frame.store(here, std::memory_order_release);
  int index = count - 1 - depth;
  const struct sigaction* target = index >= 0 ? g_displaced[at][index].load(std::memory_order_acquire) : nullptr;
  deliver(target, sig, info, context);
  // Back from the handler. Nested: hand the record back to the delivery around this one.
  c->frame.store(active != 0 && here < active ? active : 0, std::memory_order_release);
  if (active != 0 && here < active) {
    c->depth.store(saved_depth, std::memory_order_relaxed);
  } else {
    c->unrepaired.store(pc != 0 && pc_of(context) == pc, std::memory_order_relaxed);
  }
}

// A registered range as a handler found it.
struct Found {
  Slot* slot;
  uintptr_t start;
  uintptr_t end;
  uint32_t generation;
};

// The registered slot whose range holds `address`, or a Found with slot nullptr.
Found find_slot(uintptr_t address) {
  for (int b = 0; b < kMaxBlocks; b++) {
    Block* block = g_blocks[b].load(std::memory_order_acquire);
    if (block == nullptr) break;
    for (Slot& slot : block->slots) {
      uint32_t generation = slot.generation.load(std::memory_order_acquire);
      uintptr_t start = slot.start.load(std::memory_order_acquire);
      uintptr_t end = slot.end.load(std::memory_order_acquire);
      if (start > kClaimed && address >= start && address < end) return {&slot, start, end, generation};
    }
  }
  return {nullptr, 0, 0, 0};
}

// Announces a repair in the slot and checks that it still holds the range found. On false the
// caller must not touch the range (it changed: the access is simply retried).
bool enter(const Found& f) {
  f.slot->busy.fetch_add(1, std::memory_order_seq_cst);
  return f.slot->start.load(std::memory_order_seq_cst) == f.start &&
         f.slot->end.load(std::memory_order_seq_cst) == f.end &&
         f.slot->generation.load(std::memory_order_seq_cst) == f.generation;
}

void leave(const Found& f) { f.slot->busy.fetch_sub(1, std::memory_order_seq_cst); }

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

// Repairs a fault in memmap's own range `f` with `repair`, counting it in the slot's
// `counter` and in `total`. True when the faulting access can be retried: it was repaired,
// or the range changed under the handler (a close replaced it with a stand-in), so the
// access meets what is there now. False when the repair failed (out of memory).
std::atomic<void (*)()> g_notify{nullptr};
static_assert(std::atomic<void (*)()>::is_always_lock_free, "the handler needs lock-free atomics");

// Records the range's first fault (once: the first handler to claim it writes it).
void note_first(Slot* slot, uintptr_t start, uintptr_t address, uint32_t kind) {
  bool expected = false;
  if (!slot->first_claimed.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) return;
  struct timespec now = {};
  clock_gettime(CLOCK_REALTIME, &now);  // async-signal-safe (POSIX)
  slot->first_offset.store(address - start, std::memory_order_relaxed);
  slot->first_time.store(static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec, std::memory_order_relaxed);
  slot->first_kind.store(kind, std::memory_order_release);
}

bool absorb(const Found& f, uintptr_t address, bool (*repair)(const Found&, uintptr_t),
            std::atomic<uint32_t> Slot::*counter, std::atomic<uint64_t>& total, uint32_t kind) {
  bool held = enter(f);
  bool repaired = held && repair(f, address);
  if (repaired) {
    note_first(f.slot, f.start, address, kind);
    (f.slot->*counter).fetch_add(1, std::memory_order_relaxed);
    total.fetch_add(1, std::memory_order_relaxed);
    bump_epoch();
  }
  leave(f);
  // Tell the event loop (uv_async_send is async-signal-safe); it asks which mappings faulted.
  if (repaired) {
    if (void (*notify)() = g_notify.load(std::memory_order_acquire)) notify();
  }
  return repaired || !held;
}

// Whether the faulting access was a write, from the machine context, where the kernel says.
uint32_t access_of(void* context) {
  if (context == nullptr) return kFaultAccess;  // a handler that chained to ours without one
#if defined(__x86_64__)
  // The page-fault error code: bit 1 set for a write.
  const ucontext_t* uc = static_cast<const ucontext_t*>(context);
  return (uc->uc_mcontext.gregs[REG_ERR] & 2) ? kFaultWrite : kFaultRead;
#elif defined(__aarch64__)
  // The ESR record in the signal frame: a data abort's WnR bit (6) is set for a write.
  const ucontext_t* uc = static_cast<const ucontext_t*>(context);
  const unsigned char* at = reinterpret_cast<const unsigned char*>(uc->uc_mcontext.__reserved);
  const unsigned char* end = at + sizeof(uc->uc_mcontext.__reserved);
  while (at + 8 <= end) {
    uint32_t magic, size;
    memcpy(&magic, at, 4);
    memcpy(&size, at + 4, 4);
    if (magic == 0 || size < 8 || at + size > end) break;
    if (magic == 0x45535201 /* ESR_MAGIC */ && size >= 16) {
      uint64_t esr;
      memcpy(&esr, at + 8, 8);
      uint32_t ec = static_cast<uint32_t>(esr >> 26) & 0x3f;
      if (ec == 0x24 || ec == 0x25) return (esr & (1u << 6)) ? kFaultWrite : kFaultRead;
      break;
    }
    at += size;
  }
  return kFaultAccess;
#else
  (void)context;
  return kFaultAccess;
#endif
}

bool repair_sigbus(const Found& f, uintptr_t address) {
  Slot* slot = f.slot;
  uintptr_t granule = granule_of(slot);
  uintptr_t page = address & ~(granule - 1);
  if (page < f.start) page = f.start;
  bool readonly = !slot->quarantined.load(std::memory_order_acquire) &&
                  (!slot->writable.load(std::memory_order_relaxed) || slot->restricted.load(std::memory_order_relaxed));
  int prot = PROT_READ | (readonly ? 0 : PROT_WRITE);
  // Everything from the file's new end on is gone; fstat says where that is.
  int fd = slot->fd.load(std::memory_order_acquire);
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0) {
    uint64_t offset = slot->file_offset.load(std::memory_order_relaxed);
    uint64_t kept = static_cast<uint64_t>(st.st_size) > offset ? static_cast<uint64_t>(st.st_size) - offset : 0;
    uintptr_t eof = f.start + ((kept + granule - 1) & ~static_cast<uint64_t>(granule - 1));
    if (eof >= f.start && eof <= page) {
      // SAFETY: [eof, end) lies inside a range memmap mapped and still owns (enter() checked
      // it is still registered, and unregistering waits for this repair), so MAP_FIXED
      // replaces only memmap's own pages. It covers any zero memory mapped by an earlier
      // fault, so the range keeps at most two kernel mappings (file, then zeros) however
      // often it faults. The zeros are read-only where the mode or protect() forbids writes.
      if (!zero_fill(eof, f.end, prot)) return false;
      lower_lost(slot, eof);
      return true;
    }
  }
  // Not a truncation (a page that could not be read, a full tmpfs, a huge page the pool could
  // not supply): the page alone, so the data beside it is kept, until there were too many.
  if (slot->holes.fetch_add(1, std::memory_order_relaxed) < kPageRepairs) {
    uintptr_t stop = page + granule < f.end ? page + granule : f.end;
    return zero_fill(page, stop, prot);
  }
  if (!zero_fill(page, f.end, prot)) return false;
  lower_lost(slot, page);
  return true;
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  int saved_errno = errno;
  // si_code > 0: raised by the kernel for a memory access; <= 0: sent by kill, tgkill, raise
  // or sigqueue, which carry no address of ours.
  uintptr_t address = reinterpret_cast<uintptr_t>(info->si_addr);
  Found f = info->si_code > 0 ? find_slot(address) : Found{nullptr, 0, 0, 0};
  // Repaired: the load or store is retried and now reads or writes zero memory. Otherwise
  // (not memmap's, or out of memory for the repair) the previous handler decides.
  if (f.slot == nullptr ||
      !absorb(f, address, repair_sigbus, &Slot::faults, g_absorbed, kFaultLost | access_of(context))) {
    chain(sig, info, context);
  }
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
bool quarantine(const Found& f, uintptr_t address) {
  Slot* slot = f.slot;
  uintptr_t start = f.start;
  uintptr_t end = f.end;
  uintptr_t lost = slot->lost.load(std::memory_order_acquire);
  if (lost > end || lost < start) lost = end;
  int fd = slot->fd.load(std::memory_order_acquire);
  bool shared = slot->shared.load(std::memory_order_relaxed);
  uintptr_t granule = granule_of(slot);
  if (shared && fd < 0) {
    // Anonymous shared memory: no file to map privately. Copy the faulting page, or after
    // kPageRepairs pages the whole range, so the copies stay few.
    if (slot->copies.fetch_add(1, std::memory_order_relaxed) < kPageRepairs) {
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
  Found f = info->si_code == SEGV_ACCERR ? find_slot(address) : Found{nullptr, 0, 0, 0};
  // SAFETY: as in on_sigbus, the range is memmap's own while enter() holds it. The stray access
  // is retried on private memory, never reaching the file.
  if (f.slot == nullptr ||
      !absorb(f, address, quarantine, &Slot::violations, g_violations, kFaultProtection | access_of(context))) {
    chain(sig, info, context);
  }
  errno = saved_errno;
}

// Installs `handler` for `sig` unless it is in place, remembering what was there.
int install(int sig, void (*handler)(int, siginfo_t*, void*)) {
  struct sigaction current = {};
  if (sigaction(sig, nullptr, &current) != 0) return -errno;
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == handler) return 0;
  int at = index_of(sig);
  int count = g_displaced_count[at].load(std::memory_order_acquire);
  const struct sigaction* last = count > 0 ? g_displaced[at][count - 1].load(std::memory_order_acquire) : nullptr;
  // The same handler displacing memmap again (two handlers taking turns in front) is kept once.
  bool known = last != nullptr && last->sa_handler == current.sa_handler && last->sa_flags == current.sa_flags;
  if (!known) {
    const struct sigaction* previous = new (std::nothrow) struct sigaction(current);
    if (previous == nullptr) return -ENOMEM;
    // Full: the most recent one takes the last place (the oldest, what was there before
    // memmap, is always kept).
    int index = count < kDisplaced ? count : kDisplaced - 1;
    g_displaced[at][index].store(previous, std::memory_order_release);
    if (count < kDisplaced) g_displaced_count[at].store(count + 1, std::memory_order_release);
  }
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

// Waits until no handler is repairing the slot's range (see the top of this file).
void wait_for_repairs(Slot* slot) {
  while (slot->busy.load(std::memory_order_seq_cst) != 0) sched_yield();
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
      slot->generation.fetch_add(1, std::memory_order_acq_rel);
      slot->end.store(end, std::memory_order_release);
      slot->fd.store(range.fd, std::memory_order_relaxed);
      slot->file_offset.store(range.file_offset, std::memory_order_relaxed);
      slot->granule.store(range.granule, std::memory_order_relaxed);
      slot->writable.store(range.writable, std::memory_order_relaxed);
      slot->shared.store(range.shared, std::memory_order_relaxed);
      slot->restricted.store(false, std::memory_order_relaxed);
      slot->lost.store(end, std::memory_order_relaxed);
      slot->quarantined.store(false, std::memory_order_relaxed);
      slot->holes.store(0, std::memory_order_relaxed);
      slot->copies.store(0, std::memory_order_relaxed);
      slot->faults.store(0, std::memory_order_relaxed);
      slot->violations.store(0, std::memory_order_relaxed);
      slot->first_kind.store(0, std::memory_order_relaxed);
      slot->first_claimed.store(false, std::memory_order_relaxed);
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
  // Claimed while it changes, so the handler never pairs the new start with the old end, and
  // no repair of the old range is still running once it is published again.
  uintptr_t end = reinterpret_cast<uintptr_t>(start) + length;
  slot->start.store(kClaimed, std::memory_order_seq_cst);
  wait_for_repairs(slot);
  slot->generation.fetch_add(1, std::memory_order_acq_rel);
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
  slot->start.store(kClaimed, std::memory_order_seq_cst);
  wait_for_repairs(slot);
  slot->end.store(0, std::memory_order_release);
  slot->fd.store(-1, std::memory_order_release);
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

GuardEpoch* guard_epoch() { return &g_epoch; }

bool guard_first_fault(int slot_id, GuardFault* out) {
  Slot* slot = slot_at(slot_id);
  if (slot == nullptr) return false;
  uint32_t kind = slot->first_kind.load(std::memory_order_acquire);
  if (kind == 0) return false;
  out->kind = kind;
  out->offset = slot->first_offset.load(std::memory_order_relaxed);
  out->time_ns = slot->first_time.load(std::memory_order_relaxed);
  return true;
}

void guard_set_notify(void (*notify)()) { g_notify.store(notify, std::memory_order_release); }

}  // namespace mm
