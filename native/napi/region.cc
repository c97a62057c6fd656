#include "region.h"

#include "../os/guard.h"
#include "../os/mm.h"

namespace memmap {

namespace {

std::atomic<int64_t> g_regions{0};
std::atomic<int64_t> g_mapped_bytes{0};

void unmap(Region* r) {
  if (mm::unmap(r->base, r->size) == 0) {
    g_mapped_bytes.fetch_sub(static_cast<int64_t>(r->size), std::memory_order_relaxed);
  }
}

void unguard(Region* r) {
  if (r->guard_slot >= 0) mm::guard_unregister(r->guard_slot);
  r->guard_slot = -1;
}

// Releases the file behind the region: the range is unmapped, or, while views over it are
// alive, replaced by zero pages that stale views may go on reading and writing until the
// garbage collector frees them. Detaching a Buffer is not enough on its own: Node's own
// Buffer methods may hold the raw pointer across a call into user code (fill() converts its
// value after taking the bounds), and that pointer must land in memory that is still mapped.
int release_file(Region* r) {
  // The range is unregistered before it is unmapped, so the guard never maps a page over
  // memory memmap no longer owns.
  unguard(r);
  int rc = 0;
  if (r->views.load(std::memory_order_acquire) > 0) {
    rc = mm::replace_with_zero_pages(r->base, r->size);
    if (rc == 0) r->placeholder.store(true, std::memory_order_release);
  } else {
    rc = mm::unmap(r->base, r->size);
    if (rc == 0) g_mapped_bytes.fetch_sub(static_cast<int64_t>(r->size), std::memory_order_relaxed);
  }
  // If the range could not be released it stays mapped, and the last reference unmaps it.
  if (rc == 0) r->released.store(true, std::memory_order_release);
  if (r->fd >= 0 && !r->keep_fd) {
    int closed = mm::close_fd(r->fd);
    if (rc == 0) rc = closed;
  }
  r->fd = -1;
  return rc;
}

}  // namespace

Region::Region(void* b, size_t s, int f) : base(b), size(s), fd(f) {
  g_regions.fetch_add(1, std::memory_order_relaxed);
  g_mapped_bytes.fetch_add(static_cast<int64_t>(s), std::memory_order_relaxed);
}

Region::~Region() { g_regions.fetch_sub(1, std::memory_order_relaxed); }

RegionCounts region_counts() {
  return {g_regions.load(std::memory_order_relaxed), g_mapped_bytes.load(std::memory_order_relaxed)};
}

void region_retain(Region* r) { r->refs.fetch_add(1, std::memory_order_relaxed); }

void region_release(Region* r) {
  if (r->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // SAFETY: this was the last reference, so no view can reach the range any more and no other
  // thread can be inside this function for the same Region.
  unguard(r);
  if (!r->released.load(std::memory_order_acquire) || r->placeholder.load()) unmap(r);
  if (r->fd >= 0 && !r->keep_fd) mm::close_fd(r->fd);
  delete r;
}

int region_close(Region* r) {
  if (r->closed.exchange(true)) return 0;
  if (r->busy > 0) return 0;  // region_end_busy releases the file when the work is done
  return release_file(r);
}

uint32_t region_faults(const Region* r) {
  return r->guard_slot >= 0 ? mm::guard_faults(r->guard_slot) : 0;
}

int region_end_busy(Region* r) {
  if (--r->busy > 0 || !r->closed.load() || r->released.load()) return 0;
  return release_file(r);
}

}  // namespace memmap
