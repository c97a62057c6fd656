// The fault guard: turns the faults of memmap's own mappings into flags on those mappings,
// instead of the death of the process.
//
// memmap registers each range it maps. When the kernel raises SIGBUS for an address in a
// registered range (its file shrank, or could not be read), the handler maps a private
// zero-filled page over the faulting page (MAP_FIXED, on memory memmap owns), counts the fault
// against the range and returns, so the interrupted load or store completes. When it raises
// SIGSEGV for a permission fault in a registered range (a write to a read-only page, any
// access to a page protected 'none'), the handler puts a private writable copy of the page in
// its place, so the access completes on the copy and never reaches the file, and counts a
// violation. Every other SIGBUS and SIGSEGV goes to the handler that was installed before
// memmap's (V8 has one for WebAssembly), or gets the default action, exactly as without memmap.
#ifndef MEMMAP_OS_GUARD_H_
#define MEMMAP_OS_GUARD_H_

#include <cstddef>
#include <cstdint>

namespace mm {

// Installs the SIGBUS and SIGSEGV handlers if they are not the ones in place (once at load, and again if
// something replaced it since; the replacement then becomes the handler chained to).
// Returns 0 or -errno.
int guard_install();

// Registers [start, start + length), mapped with protection `writable` or read-only, as a
// range whose faults are absorbed. Returns a slot id (>= 0) or -ENOMEM.
int guard_register(void* start, size_t length, bool writable);

// Points a registered slot at a range that moved or changed size (mremap), in place, so it
// cannot fail for want of a slot.
void guard_move(int slot, void* start, size_t length);

// Removes a range. After it returns, the handler no longer touches the range.
void guard_unregister(int slot);

// Faults absorbed in a registered range since it was registered.
uint32_t guard_faults(int slot);

// Faults absorbed in all ranges since the process started.
uint64_t guard_absorbed_total();

// Protection faults (SIGSEGV) absorbed in a registered range, and in all ranges.
uint32_t guard_violations(int slot);
uint64_t guard_violations_total();

}  // namespace mm

#endif  // MEMMAP_OS_GUARD_H_
