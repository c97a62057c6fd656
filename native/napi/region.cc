#include "region.h"

#include "../os/mm.h"

namespace memmap {

namespace {

// Releases the file behind the region: the range is unmapped, or, while SharedArrayBuffers
// over it are alive (they cannot be detached), replaced by zero pages that those stale views
// may go on reading until the garbage collector frees them.
int release_file(Region* r) {
  int rc = 0;
  if (r->shared_views.load(std::memory_order_acquire) > 0) {
    rc = mm::replace_with_zero_pages(r->base, r->size);
    if (rc == 0) r->placeholder.store(true, std::memory_order_release);
  } else {
    rc = mm::unmap(r->base, r->size);
  }
  // If the range could not be released it stays mapped, and the last reference unmaps it.
  if (rc == 0) r->released.store(true, std::memory_order_release);
  if (r->fd >= 0) {
    int closed = mm::close_fd(r->fd);
    r->fd = -1;
    if (rc == 0) rc = closed;
  }
  return rc;
}

}  // namespace

void region_retain(Region* r) { r->refs.fetch_add(1, std::memory_order_relaxed); }

void region_release(Region* r) {
  if (r->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // SAFETY: this was the last reference, so no view can reach the range any more and no other
  // thread can be inside this function for the same Region.
  if (!r->released.load(std::memory_order_acquire) || r->placeholder.load()) {
    mm::unmap(r->base, r->size);
  }
  if (r->fd >= 0) mm::close_fd(r->fd);
  delete r;
}

int region_close(Region* r) {
  if (r->closed.exchange(true)) return 0;
  if (r->busy > 0) return 0;  // region_end_busy releases the file when the work is done
  return release_file(r);
}

int region_end_busy(Region* r) {
  if (--r->busy > 0 || !r->closed.load() || r->released.load()) return 0;
  return release_file(r);
}

}  // namespace memmap
