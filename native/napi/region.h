// A Region is one range memmap mapped, shared by every JavaScript object that can reach it.
//
// Three kinds of owner hold a reference: the handle object the TypeScript Mapping keeps, every
// ArrayBuffer handed out over the range, and every SharedArrayBuffer backing store (whose
// last reference may be dropped on any thread). The range is released at an explicit close()
// or, for a mapping nobody closed, when the last reference goes.
#ifndef MEMMAP_NAPI_REGION_H_
#define MEMMAP_NAPI_REGION_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace memmap {

struct Region {
  void* base;  // page-aligned start of the mapped range
  size_t size;  // bytes mapped, from base
  int fd;  // the file descriptor the region owns, or -1 for anonymous memory

  std::atomic<int> refs{1};  // the handle, plus one per ArrayBuffer and backing store
  std::atomic<int> views{0};  // ArrayBuffers and SharedArrayBuffer backing stores still alive
  std::atomic<int> shared_views{0};  // of which SharedArrayBuffer backing stores
  int guard_slot = -1;  // the fault guard's slot for a file range, or -1
  int busy = 0;  // asynchronous operations running on the range (main thread only)
  std::atomic<bool> closed{false};  // close() was called
  std::atomic<bool> released{false};  // the file range was unmapped and the fd closed
  std::atomic<bool> placeholder{false};  // zero pages stand where the file was; unmap last
  bool keep_fd = false;  // the fd was handed to a new region by remap: do not close it
  bool remapped = false;  // closed because remap or resize mapped the file anew, not by close()
  int64_t reported = 0;  // bytes of external memory reported to the GC for this region

  Region(void* b, size_t s, int f);
  ~Region();
};

// How many regions exist and how many bytes they keep mapped (file ranges and zero-page
// stand-ins alike), for the leak tests.
struct RegionCounts {
  int64_t regions;
  int64_t mapped_bytes;
  int64_t standing_bytes;  // of which zero-page stand-ins of closed ranges not yet unmapped
  int64_t standing;        // how many stand-ins those bytes are
  int64_t events;          // regions made and unmapped, stand-ins made, gone and unmapped,
                           // partial protect/advise/lock/bind, ever: each may add up to two
                           // kernel mappings
};
RegionCounts region_counts();

// Where a new mapping of `length` bytes could go so that, once closed under a live view, its
// stand-in adjoins the last stand-in made and the kernel merges the two into one mapping: the
// range just below that stand-in, or 0 (anywhere) when there is none. Only a hint: the caller
// maps there with MAP_FIXED_NOREPLACE and falls back to anywhere if the range is taken.
uintptr_t region_placement_hint(size_t length);

// How many kernel mappings unmapping gone stand-ins from the middle of a run may still add
// (set by the mapping-count check in TypeScript); past it they are held until a neighbour goes.
void region_set_split_room(int64_t room);

// Counts a change that may split a kernel mapping of a live region (protect, advise, lock or
// bind of part of it) as a region event.
void region_note_split();

// Takes one more reference.
void region_retain(Region* r);

// Grows or shrinks the region in place or by moving it (mremap), and points the fault guard at
// the new range. Only when nothing but the handle can reach the range (no view is alive and no
// asynchronous operation runs): otherwise -EBUSY, and the caller maps the file anew instead.
int region_resize(Region* r, size_t size);

// Drops one reference; the last one unmaps whatever is still mapped and frees the Region.
// Safe on any thread: it only makes system calls and frees memory.
void region_release(Region* r);

// Marks the region closed and, unless an asynchronous operation still uses the range,
// releases the file now. Returns 0 or -errno of the first step that failed.
int region_close(Region* r);

// The faults the guard absorbed in this region's range (0 once the region is closed).
uint32_t region_faults(const Region* r);

// The protection faults (SIGSEGV) the guard absorbed in this region's range.
uint32_t region_violations(const Region* r);

// A view of the region (a Buffer's ArrayBuffer object, or a SharedArrayBuffer's backing
// store) was garbage collected. The last one unmaps the stand-in of a closed region. Safe on
// any thread.
void region_view_gone(Region* r);

// Unmaps the region's stand-in, once.
void region_drop_placeholder(Region* r);

// Called on the main thread when an asynchronous operation on the range is done; performs a
// close() that had to wait for it.
int region_end_busy(Region* r);

}  // namespace memmap

#endif  // MEMMAP_NAPI_REGION_H_
