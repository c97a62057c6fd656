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

namespace memmap {

struct Region {
  void* base;  // page-aligned start of the mapped range
  size_t size;  // bytes mapped, from base
  int fd;  // the file descriptor the region owns, or -1 for anonymous memory

  std::atomic<int> refs{1};  // the handle, plus one per ArrayBuffer and backing store
  std::atomic<int> shared_views{0};  // SharedArrayBuffer backing stores still alive
  int busy = 0;  // asynchronous operations running on the range (main thread only)
  std::atomic<bool> closed{false};  // close() was called
  std::atomic<bool> released{false};  // the file range was unmapped and the fd closed
  std::atomic<bool> placeholder{false};  // zero pages stand where the file was; unmap last

  Region(void* b, size_t s, int f) : base(b), size(s), fd(f) {}
};

// Takes one more reference.
void region_retain(Region* r);

// Drops one reference; the last one unmaps whatever is still mapped and frees the Region.
// Safe on any thread: it only makes system calls and frees memory.
void region_release(Region* r);

// Marks the region closed and, unless an asynchronous operation still uses the range,
// releases the file now. Returns 0 or -errno of the first step that failed.
int region_close(Region* r);

// Called on the main thread when an asynchronous operation on the range is done; performs a
// close() that had to wait for it.
int region_end_busy(Region* r);

}  // namespace memmap

#endif  // MEMMAP_NAPI_REGION_H_
