// The fault guard: turns the SIGBUS a mapped file raises when it shrank under the mapping (or
// could not be read) into a flag on that mapping, instead of the death of the process.
//
// memmap registers each file range it maps. When the kernel raises SIGBUS for an address in a
// registered range, the handler maps a private zero-filled page over the faulting page
// (MAP_FIXED, on memory memmap owns), counts the fault against the range and returns, so the
// interrupted load or store completes. Every other SIGBUS goes to the handler that was
// installed before memmap's, or gets the default action, exactly as without memmap.
#ifndef MEMMAP_OS_GUARD_H_
#define MEMMAP_OS_GUARD_H_

#include <cstddef>
#include <cstdint>

namespace mm {

// Installs the SIGBUS handler if it is not the one in place (once at load, and again if
// something replaced it since; the replacement then becomes the handler chained to).
// Returns 0 or -errno.
int guard_install();

// Registers [start, start + length), mapped with protection `writable` or read-only, as a
// range whose faults are absorbed. Returns a slot id (>= 0) or -ENOMEM.
int guard_register(void* start, size_t length, bool writable);

// Removes a range. After it returns, the handler no longer touches the range.
void guard_unregister(int slot);

// Faults absorbed in a registered range since it was registered.
uint32_t guard_faults(int slot);

// Faults absorbed in all ranges since the process started.
uint64_t guard_absorbed_total();

}  // namespace mm

#endif  // MEMMAP_OS_GUARD_H_
