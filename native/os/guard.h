// The fault guard: turns the faults of memmap's own mappings into flags on those mappings,
// instead of the death of the process.
//
// memmap registers each range it maps. When the kernel raises SIGBUS for an address in a
// registered range (its file shrank, or a page could not be read), the handler maps private
// zero-filled memory over the lost part of the range in one step (from the file's new end, or
// the faulting page, to the end of the range), counts the fault against the range and
// returns, so the interrupted load or store completes. When it raises SIGSEGV for a
// permission fault in a registered range (a write to a read-only page, any access to a page
// protected 'none'), the handler quarantines the range: its pages become private and
// writable (a copy-on-write mapping of the same file, or the same private memory made
// writable), so the access completes on private memory and never reaches the file. Either
// way a range costs a small, constant number of kernel mappings however many faults it takes.
// Every other SIGBUS and SIGSEGV goes to the handler that was installed before memmap's (V8
// has one for WebAssembly), or gets the default action, exactly as without memmap.
#ifndef MEMMAP_OS_GUARD_H_
#define MEMMAP_OS_GUARD_H_

#include <cstddef>
#include <cstdint>

namespace mm {

// What the guard needs to know of a range to repair it from inside a signal handler.
struct GuardRange {
  int fd = -1;  // the file mapped there (it stays open while registered), or -1: anonymous
  uint64_t file_offset = 0;  // where the range starts in that file
  size_t granule = 0;  // the page size the range is mapped with (huge pages: theirs); 0: base
  bool writable = false;  // its mode lets writes through (not 'read')
  bool shared = false;  // writes reach the file or other processes (MAP_SHARED)
};

// Installs the SIGBUS and SIGSEGV handlers if they are not the ones in place (once at load,
// and again if something replaced them since; the replacement then becomes the handler
// chained to). Returns 0 or -errno.
int guard_install();

// Registers [start, start + length) as a range whose faults are absorbed. Returns a slot id
// (>= 0) or -ENOMEM.
int guard_register(void* start, size_t length, const GuardRange& range);

// Points a registered slot at a range that moved or changed size (mremap), in place, so it
// cannot fail for want of a slot.
void guard_move(int slot, void* start, size_t length);

// Records that protect() made part of the range less accessible than its mode: memory the
// guard maps there later is read-only, so stray writes into it are caught too.
void guard_restricted(int slot);

// Removes a range. After it returns, the handler no longer touches the range.
void guard_unregister(int slot);

// Faults absorbed in a registered range since it was registered.
uint32_t guard_faults(int slot);

// Faults absorbed in all ranges since the process started.
uint64_t guard_absorbed_total();

// Protection faults (SIGSEGV) absorbed in a registered range, and in all ranges.
uint32_t guard_violations(int slot);
uint64_t guard_violations_total();

// A word the handlers increment after every fault they absorb, anywhere. JavaScript reads it
// through a typed array and asks about its own mapping only when it changed, so checking a
// mapping costs a memory read. `probe` lets the reader check that its view is the real word.
struct GuardEpoch {
  uint32_t epoch;
  uint32_t probe;
};
GuardEpoch* guard_epoch();

// What a range's first absorbed fault was: kFaultLost (SIGBUS: the file shrank, or a page
// could not be read) or kFaultProtection (SIGSEGV: an access its protection forbids), or'd
// with the access (kFaultRead, kFaultWrite, or kFaultAccess where the machine does not say).
enum FaultKind : uint32_t {
  kFaultLost = 1,
  kFaultProtection = 2,
  kFaultRead = 4,
  kFaultWrite = 8,
  kFaultAccess = 16,
};
struct GuardFault {
  uint32_t kind;
  uint64_t offset;  // from the start of the registered range
  int64_t time_ns;  // CLOCK_REALTIME
};
// The first fault absorbed in a registered range since it was registered; false if none.
bool guard_first_fault(int slot, GuardFault* out);

// A function the handlers call (from the signal handler) after each fault they absorb; it
// must be async-signal-safe. nullptr: none.
void guard_set_notify(void (*notify)());

}  // namespace mm

#endif  // MEMMAP_OS_GUARD_H_
