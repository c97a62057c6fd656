#include "region.h"

#include <cerrno>
#include <iterator>
#include <map>
#include <mutex>

#include "../os/guard.h"
#include "../os/lock.h"
#include "../os/mm.h"
#include "waiter.h"

namespace memmap {

namespace {

std::atomic<int64_t> g_regions{0};
std::atomic<int64_t> g_mapped_bytes{0};
// Zero-page stand-ins under views of closed ranges, in bytes of address space, for the hint
// that ENOMEM from a new mapping carries.
std::atomic<int64_t> g_standing_bytes{0};
std::atomic<int64_t> g_standing{0};
std::atomic<int64_t> g_events{0};
// Base of the stand-in made last (0: none since the stand-ins last ran out), for
// region_placement_hint.
std::atomic<uintptr_t> g_last_stand_in{0};

// Every stand-in by base address, the live ones and those whose views are gone but which
// are not unmapped yet. Neighbouring stand-ins are one kernel mapping (the kernel merges
// them, and mappings are placed so that they neighbour), and unmapping one from the middle of
// such a run splits it in two: a million stand-ins dropped in the order their views happen to
// be collected would need hundreds of thousands of kernel mappings at once, past
// vm.max_map_count, and V8's next heap page would end the process. So a stand-in whose views
// are gone is unmapped together with the gone ones beside it, and from the middle of a run
// (live stand-ins adjoin it on both sides) only while the split room that the mapping-count
// check last granted lasts; beyond it its pages are given back (MADV_DONTNEED) and its range
// stays reserved, still counted as standing, until a neighbour goes. Costs a node (about 80
// bytes) per stand-in while it stands. Allocated once and never freed: deleters of
// SharedArrayBuffers may run on other threads while static destructors run at exit.
struct StandIn {
  size_t span;     // bytes of address space, whole pages
  int64_t bytes;   // what g_mapped_bytes and g_standing_bytes counted for them
  int64_t count;   // stand-ins merged into this entry
  bool gone;
};
using StandIns = std::map<uintptr_t, StandIn>;
std::mutex g_stand_ins_mutex;
StandIns& stand_ins() {
  static StandIns* map = new StandIns();
  return *map;
}
std::atomic<int64_t> g_split_room{2048};

size_t whole_pages(size_t bytes) {
  size_t page = mm::page_size();
  return (bytes + page - 1) / page * page;
}

void stand_in_made(void* base, size_t size) {
  std::lock_guard<std::mutex> lock(g_stand_ins_mutex);
  stand_ins()[reinterpret_cast<uintptr_t>(base)] = StandIn{whole_pages(size), static_cast<int64_t>(size), 1, false};
}

bool adjoin(StandIns::iterator low, StandIns::iterator high) { return low->first + low->second.span == high->first; }

void unmapped_stand_ins(int64_t bytes, int64_t count) {
  g_mapped_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  g_standing_bytes.fetch_sub(bytes, std::memory_order_relaxed);
  g_events.fetch_add(1, std::memory_order_relaxed);
  if (g_standing.fetch_sub(count, std::memory_order_relaxed) == count) {
    g_last_stand_in.store(0, std::memory_order_relaxed);
  }
}

void stand_in_gone(void* base, size_t size) {
  std::lock_guard<std::mutex> lock(g_stand_ins_mutex);
  StandIns& all = stand_ins();
  auto it = all.find(reinterpret_cast<uintptr_t>(base));
  if (it == all.end()) {  // not recorded (cannot happen): unmap it alone
    if (mm::unmap(base, size) == 0) unmapped_stand_ins(static_cast<int64_t>(size), 1);
    return;
  }
  it->second.gone = true;
  if (it != all.begin()) {
    auto below = std::prev(it);
    if (below->second.gone && adjoin(below, it)) {
      below->second.span += it->second.span;
      below->second.bytes += it->second.bytes;
      below->second.count += it->second.count;
      all.erase(it);
      it = below;
    }
  }
  auto above = std::next(it);
  if (above != all.end() && above->second.gone && adjoin(it, above)) {
    it->second.span += above->second.span;
    it->second.bytes += above->second.bytes;
    it->second.count += above->second.count;
    all.erase(above);
  }
  // Gone neighbours were merged above, so adjoining ones are live.
  above = std::next(it);
  bool middle = it != all.begin() && adjoin(std::prev(it), it) && above != all.end() && adjoin(it, above);
  bool may_split = !middle || g_split_room.fetch_sub(1, std::memory_order_relaxed) > 0;
  if (may_split && mm::unmap(reinterpret_cast<void*>(it->first), it->second.span) == 0) {
    unmapped_stand_ins(it->second.bytes, it->second.count);
    all.erase(it);
    return;
  }
  // Held in the middle of a run (or the unmap failed): only the pages a stale view may have
  // written are freed now; the range goes with its neighbours.
  mm::advise(base, size, mm::Advice::kDontNeed);
}

}  // namespace

void region_set_split_room(int64_t room) { g_split_room.store(room, std::memory_order_relaxed); }

void region_note_split() { g_events.fetch_add(1, std::memory_order_relaxed); }

namespace {

void unmap(Region* r) {
  if (mm::unmap(r->base, r->size) == 0) {
    g_mapped_bytes.fetch_sub(static_cast<int64_t>(r->size), std::memory_order_relaxed);
    g_events.fetch_add(1, std::memory_order_relaxed);  // the middle of merged mappings splits
  }
}

void unguard(Region* r) {
  if (r->guard_slot >= 0) mm::guard_unregister(r->guard_slot);
  r->guard_slot = -1;
}

// Releases the file behind the region. The range is unmapped, unless views over it are alive:
// then it is replaced by zero pages that stale views may go on reading and writing, until the
// last view is garbage collected (region_view_gone). A detached Buffer counts as alive for
// as long as its JavaScript object is: code below JavaScript may hold the raw address while
// something keeps that object, and only while it does. Node's own Buffer methods hold it
// across a call into user code (fill() converts its value after taking the bounds); an
// fs.read or fs.write on the thread pool and a socket write queued in libuv hold it for as
// many turns of the event loop as the I/O takes, keeping the Buffer in their request. There
// is no budget after which a closed range is unmapped at once: an address handed out stays
// memmap's until no view can reach it, however many mappings close. A stand-in costs no
// memory until a stale view writes to it (MAP_NORESERVE zero pages), and the stand-ins of
// neighbouring ranges merge into one kernel mapping.
int release_file(Region* r) {
  int rc = 0;
  int64_t size = static_cast<int64_t>(r->size);
  // Locks this thread holds in the range are handed on as a dying holder's would be: their
  // records must not stay on the thread's robust list over memory that is going away (the
  // kernel's walk would stop there, and other threads would wait for ever). Not for a remap:
  // remap() and resize() refuse while this thread holds a lock in the range.
  if (!r->remapped) mm::lock_abandon_range(r->base, r->size);
  // Then asynchronous waits on words in the range end: after the swap below no wake reaches
  // them (zero pages that hold the value a waiter expects would keep it asleep for ever).
  waiter_forget_range(r->base, r->size);
  if (r->views.load(std::memory_order_acquire) > 0) {
    // SAFETY: the zero pages go in while the range is still registered with the guard, so a
    // fault another thread takes in it meanwhile (through a SharedArrayBuffer, on a file that
    // shrank) is still memmap's to repair; zero pages cannot fault, so unregistering after
    // leaves no window.
    rc = mm::replace_with_zero_pages(r->base, r->size);
    unguard(r);
    if (rc == 0) {
      g_standing_bytes.fetch_add(size, std::memory_order_relaxed);
      g_standing.fetch_add(1, std::memory_order_relaxed);
      g_events.fetch_add(1, std::memory_order_relaxed);
      g_last_stand_in.store(reinterpret_cast<uintptr_t>(r->base), std::memory_order_relaxed);
      stand_in_made(r->base, r->size);
      r->placeholder.store(true, std::memory_order_release);
      // The last view may have gone between the check above and now.
      if (r->views.load(std::memory_order_acquire) == 0) region_drop_placeholder(r);
    }
  } else {
    // No view: nothing can touch the range, so it is unregistered, then unmapped (the guard
    // never maps a page over memory memmap no longer owns).
    unguard(r);
    rc = mm::unmap(r->base, r->size);
    if (rc == 0) {
      g_mapped_bytes.fetch_sub(size, std::memory_order_relaxed);
      g_events.fetch_add(1, std::memory_order_relaxed);
    }
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

void region_drop_placeholder(Region* r) {
  // Exactly once, whichever thread the last view went on.
  if (!r->placeholder.exchange(false, std::memory_order_acq_rel)) return;
  stand_in_gone(r->base, r->size);
}

uintptr_t region_placement_hint(size_t length) {
  // Not for 2 MiB and more: there the kernel's own choice is aligned for huge pages (shmem,
  // DAX, file THP), and such stand-ins are few enough not to need merging.
  if (length >= (size_t{2} << 20)) return 0;
  size_t span = whole_pages(length);
  uintptr_t last = g_last_stand_in.load(std::memory_order_relaxed);
  return last > span ? last - span : 0;
}

void region_view_gone(Region* r) {
  // SAFETY: the view's JavaScript object (or SharedArrayBuffer backing store) is gone, so no
  // code can reach the range through it any more; once no view is left, a stand-in is unmapped.
  if (r->views.fetch_sub(1, std::memory_order_acq_rel) == 1 && r->closed.load(std::memory_order_acquire)) {
    region_drop_placeholder(r);
  }
}

Region::Region(void* b, size_t s, int f) : base(b), size(s), fd(f) {
  g_regions.fetch_add(1, std::memory_order_relaxed);
  g_events.fetch_add(1, std::memory_order_relaxed);
  g_mapped_bytes.fetch_add(static_cast<int64_t>(s), std::memory_order_relaxed);
}

Region::~Region() { g_regions.fetch_sub(1, std::memory_order_relaxed); }

RegionCounts region_counts() {
  return {g_regions.load(std::memory_order_relaxed), g_mapped_bytes.load(std::memory_order_relaxed),
          g_standing_bytes.load(std::memory_order_relaxed), g_standing.load(std::memory_order_relaxed), g_events.load(std::memory_order_relaxed)};
}

void region_retain(Region* r) { r->refs.fetch_add(1, std::memory_order_relaxed); }

void region_release(Region* r) {
  if (r->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // SAFETY: this was the last reference, so no view can reach the range any more and no other
  // thread can be inside this function for the same Region.
  unguard(r);
  if (r->placeholder.load(std::memory_order_acquire)) {
    region_drop_placeholder(r);
  } else if (!r->released.load(std::memory_order_acquire)) {
    unmap(r);
  }
  if (r->fd >= 0 && !r->keep_fd) mm::close_fd(r->fd);
  delete r;
}

int region_resize(Region* r, size_t size) {
  if (r->views.load(std::memory_order_acquire) > 0 || r->busy > 0) return -EBUSY;
  void* moved = nullptr;
  int rc = mm::resize_mapping(r->base, r->size, size, &moved);
  if (rc < 0) return rc;
  if (r->guard_slot >= 0) mm::guard_move(r->guard_slot, moved, size);
  g_mapped_bytes.fetch_add(static_cast<int64_t>(size) - static_cast<int64_t>(r->size), std::memory_order_relaxed);
  r->base = moved;
  r->size = size;
  return 0;
}

int region_close(Region* r) {
  if (r->closed.exchange(true)) return 0;
  if (r->busy > 0) return 0;  // region_end_busy releases the file when the work is done
  return release_file(r);
}


uint32_t region_faults(const Region* r) {
  return r->guard_slot >= 0 ? mm::guard_faults(r->guard_slot) : 0;
}

uint32_t region_violations(const Region* r) {
  return r->guard_slot >= 0 ? mm::guard_violations(r->guard_slot) : 0;
}

int region_end_busy(Region* r) {
  if (--r->busy > 0 || !r->closed.load() || r->released.load()) return 0;
  return release_file(r);
}

}  // namespace memmap
