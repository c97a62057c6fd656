// Node-API callbacks for mappings: create, view, flush, advise, close.
//
// Each callback unpacks its arguments, makes one call into native/os, and returns either a
// value or a negative errno. Offsets arrive already page-aligned and checked by TypeScript;
// the bounds are checked again here because a wrong number must never become a wild pointer.
#include "mapping.h"

#include <dlfcn.h>
#include <uv.h>

#include <cerrno>

#include <cstdint>
#include <new>

#include "../os/guard.h"
#include "../os/lock.h"
#include "../os/mm.h"
#include "glue.h"
#include "region.h"

namespace memmap {

namespace {

// What a mapping costs beyond the JavaScript objects that reach it: its pages (counted up to
// 1 MiB, since file pages are not heap memory and a huge figure would make every collection
// a full one), plus a descriptor and a kernel mapping, which are scarce. Reporting it makes
// the garbage collector come round for forgotten mappings before the process runs out of
// descriptors.
int64_t external_cost(size_t size) {
  constexpr int64_t kFixed = 64 * 1024, kPagesCap = 1024 * 1024;
  return kFixed + (static_cast<int64_t>(size) < kPagesCap ? static_cast<int64_t>(size) : kPagesCap);
}

void report(napi_env env, Region* r, int64_t bytes) {
  int64_t total = 0;
  napi_adjust_external_memory(env, bytes, &total);
  r->reported += bytes;
}

void finalize_handle(napi_env env, void* data, void*) {
  Region* r = static_cast<Region*>(data);
  if (r->reported != 0) report(env, r, -r->reported);
  region_release(r);
}

// The ArrayBuffer's backing store is gone (collected, or detached at close()).
void finalize_view(napi_env, void*, void* hint) { region_release(static_cast<Region*>(hint)); }

// The ArrayBuffer's JavaScript object is gone. This, not the backing store, ends the view: a
// detached buffer's backing store goes at once, while code that keeps the object (an fs.read
// in flight holds its Buffer) may still hold the address.
void finalize_view_object(napi_env, void* data, void*) {
  Region* r = static_cast<Region*>(data);
  region_view_gone(r);
  region_release(r);
}

// The deleter a SharedArrayBuffer backing store calls when its last view is gone. V8 and Node
// may call it on any thread, which is why it only touches atomics, the stand-in table (under
// its mutex) and makes system calls.
void release_shared_view(void*, size_t, void* hint) {
  Region* r = static_cast<Region*>(hint);
  r->shared_views.fetch_sub(1, std::memory_order_acq_rel);
  region_view_gone(r);
  region_release(r);
}

void release_shared_view_noenv(void* data, void* hint) { release_shared_view(data, 0, hint); }

napi_value wrap_region(napi_env env, Region* r) {
  napi_value handle = nullptr;
  if (napi_create_external(env, r, finalize_handle, nullptr, &handle) != napi_ok) {
    // The external never existed, so nothing else holds the region: release it here.
    region_release(r);
    return fail(env, "could not create a mapping handle");
  }
  if (!tag_region_handle(env, handle)) return fail(env, "could not tag a mapping handle");
  report(env, r, external_cost(r->size));
  return handle;
}

// Maps a file range and registers it with the fault guard; a range the guard cannot watch is
// not handed out. On success *out owns fd.
int map_guarded(int fd, uint64_t offset, size_t length, mm::Access access, int flags,
                uintptr_t hint, Region** out) {
  int rc = mm::guard_install();
  if (rc < 0) return rc;
  void* addr = nullptr;
  size_t granule = mm::mapping_granule(fd);  // hugetlbfs: repairs come in whole huge pages
  // Anywhere: first just below the last stand-in, so that this range's own stand-in (if it is
  // closed under a live view) merges with it. A loop that maps, views and closes small ranges
  // otherwise leaves one kernel mapping per stand-in wherever the kernel found room, and those
  // count against vm.max_map_count until the views are collected.
  uintptr_t near = hint == 0 && granule == 0 ? region_placement_hint(length) : 0;
  rc = near != 0 ? mm::map_file(fd, offset, length, access, flags, near, &addr) : -EEXIST;
  if (rc < 0) rc = mm::map_file(fd, offset, length, access, flags, hint, &addr);
  if (rc < 0) return rc;
  mm::GuardRange range;
  range.fd = fd;
  range.file_offset = offset;
  range.granule = granule;
  range.writable = access != mm::Access::kRead;
  range.shared = access != mm::Access::kCopy;
  int slot = mm::guard_register(addr, length, range);
  if (slot < 0) {
    mm::unmap(addr, length);
    return slot;
  }
  *out = new Region(addr, length, fd);
  (*out)->guard_slot = slot;
  return 0;
}

// Writes [addr, addr + length) back (how: mm::FlushFlags); then fsyncs the file if asked
// (after it grew).
int flush_range(Region* r, uint8_t* addr, size_t length, bool sync_file, int how) {
  int rc = length > 0 ? mm::flush(addr, length, how) : 0;
  if (rc == 0 && sync_file && r->fd >= 0) rc = mm::sync_file(r->fd);
  return rc;
}

// Reads the (handle, start, length, syncFile, how) arguments of flush and flushAsync.
bool get_flush_args(napi_env env, napi_callback_info info, Region** r, uint64_t* start,
                    uint64_t* length, bool* sync_file, int32_t* how) {
  napi_value argv[5];
  return get_args(env, info, 5, argv) && get_range(env, argv, r, start, length) &&
         get_bool(env, argv[3], sync_file) && get_int(env, argv[4], how);
}

struct FlushWork {
  Region* region;
  uint8_t* addr;
  size_t length;
  bool sync_file;
  int how;
  // SAFETY: a duplicate of the region's descriptor that this work owns, so that a resize()
  // that maps the file anew and a close() that follows cannot close it under the pool thread,
  // nor let its number be reused by another open() before the fsync. -1 for anonymous memory.
  int fd = -1;
  // The file's size that the work has made durable: its size when the flush started if the
  // file was not to be synced, else its size just before the fsync.
  uint64_t size_covered = 0;
  // The second round: the file's size changed while the first one ran (a resize() on the main
  // thread), so only the fsync runs again, for the new size.
  bool resync = false;
  int result = 0;
  napi_deferred deferred = nullptr;
  napi_async_work work = nullptr;
};

void flush_execute(napi_env, void* data) {
  // SAFETY: the region holds a reference and is marked busy until flush_complete, so the range
  // stays mapped while this runs on a worker thread; the descriptor is the work's own.
  FlushWork* w = static_cast<FlushWork*>(data);
  int rc = !w->resync && w->length > 0 ? mm::flush(w->addr, w->length, w->how) : 0;
  if (rc == 0 && w->fd >= 0 && (w->sync_file || w->resync)) {
    // The size is read before the fsync: a resize that lands after this read is caught by
    // flush_complete, one that landed before it is made durable by the fsync below.
    mm::FileInfo file{};
    rc = mm::file_info(w->fd, &file);
    if (rc == 0) {
      w->size_covered = file.size;
      rc = mm::sync_file(w->fd);
    }
  }
  w->result = rc;
}

void flush_complete(napi_env env, napi_status status, void* data);

// Queues the work's next round on libuv's pool; false if it could not be queued.
bool queue_flush(napi_env env, FlushWork* w) {
  napi_value name = nullptr;
  return napi_create_string_utf8(env, "memmap.flush", NAPI_AUTO_LENGTH, &name) == napi_ok &&
         napi_create_async_work(env, nullptr, name, flush_execute, flush_complete, w, &w->work) == napi_ok &&
         napi_queue_async_work(env, w->work) == napi_ok;
}

void flush_complete(napi_env env, napi_status status, void* data) {
  FlushWork* w = static_cast<FlushWork*>(data);
  int result = status == napi_ok ? w->result : -ECANCELED;
  if (w->work != nullptr) napi_delete_async_work(env, w->work);
  w->work = nullptr;
  if (result == 0 && w->fd >= 0 && !w->resync) {
    // The program resized the file while the pages were written (resize() does not wait for
    // a flush in flight): sync once more, so that the promise covers the size it set too.
    mm::FileInfo file{};
    if (mm::file_info(w->fd, &file) == 0 && file.size != w->size_covered) {
      w->resync = true;
      if (queue_flush(env, w)) return;
      result = -ECANCELED;
    }
  }
  int closed = region_end_busy(w->region);
  // A deferred close that left a stand-in keeps it until the region is collected.
  if (result == 0 && closed < 0) result = closed;
  napi_resolve_deferred(env, w->deferred, make_int(env, result));
  if (w->fd >= 0) mm::close_fd(w->fd);
  region_release(w->region);
  delete w;
}

using CreateExternalSab = napi_status (*)(napi_env, void*, size_t, void (*)(void*, void*), void*,
                                          napi_value*);

// Node 24.16+ and 26.1+ can wrap external memory in a SharedArrayBuffer through Node-API
// (node_api_create_external_sharedarraybuffer, experimental). Looking it up at run time keeps
// the addon free of any symbol an older Node, Bun or Deno lacks: linking it directly would
// load fine and then kill the process with "symbol lookup error" at the first call.
CreateExternalSab find_create_external_sab() {
  static CreateExternalSab fn = reinterpret_cast<CreateExternalSab>(
      dlsym(RTLD_DEFAULT, "node_api_create_external_sharedarraybuffer"));
  return fn;
}

}  // namespace

// mapFile(fd, offset, length, access, flags, hint) -> handle | -errno; hint 0: anywhere.
// On success the region owns fd; on failure the caller still does.
napi_value js_map_file(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int32_t fd = 0, access = 0, flags = 0;
  uint64_t offset = 0, length = 0, hint = 0;
  if (!get_args(env, info, 6, argv) || !get_int(env, argv[0], &fd) ||
      !get_size(env, argv[1], &offset) || !get_size(env, argv[2], &length) ||
      !get_int(env, argv[3], &access) || !get_int(env, argv[4], &flags) ||
      !get_size(env, argv[5], &hint)) {
    return nullptr;
  }
  if (access < 0 || access > 2 || length == 0) return fail(env, "bad mapFile arguments");
  Region* r = nullptr;
  int rc = map_guarded(fd, offset, length, static_cast<mm::Access>(access), flags,
                       static_cast<uintptr_t>(hint), &r);
  if (rc < 0) return make_int(env, rc);
  return wrap_region(env, r);
}

// remapFile(handle, offset, length, access, flags) -> new handle | -errno.
// Maps the old region's file again (at its current size, as the caller measured it) and
// moves the file descriptor to the new region; the old region is closed (its views read
// zeros). On failure the old region is left as it was.
napi_value js_remap_file(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  Region* old = nullptr;
  int32_t access = 0, flags = 0;
  uint64_t offset = 0, length = 0;
  if (!get_args(env, info, 5, argv) || !get_region(env, argv[0], &old) ||
      !get_size(env, argv[1], &offset) || !get_size(env, argv[2], &length) ||
      !get_int(env, argv[3], &access) || !get_int(env, argv[4], &flags)) {
    return nullptr;
  }
  if (access < 0 || access > 2 || length == 0 || old->fd < 0 || old->closed.load()) {
    return fail(env, "bad remapFile arguments");
  }
  Region* fresh = nullptr;
  int rc = map_guarded(old->fd, offset, length, static_cast<mm::Access>(access), flags, 0, &fresh);
  if (rc < 0) return make_int(env, rc);
  old->keep_fd = true;
  old->remapped = true;
  if (old->reported != 0) report(env, old, -old->reported);
  region_close(old);  // its views (detached by the caller) keep a stand-in until collected
  return wrap_region(env, fresh);
}

// lockHeldIn(handle) -> whether the calling thread holds a Mutex whose word is in the region.
napi_value js_lock_held_in(napi_env env, napi_callback_info info) {
  napi_value argv[1], result = nullptr;
  Region* r = nullptr;
  if (!get_args(env, info, 1, argv) || !get_region(env, argv[0], &r)) return nullptr;
  napi_get_boolean(env, mm::lock_held_in(r->base, r->size), &result);
  return result;
}

// resizeRegion(handle, length) -> 0 | -EBUSY (views are alive: map anew instead) | -errno.
napi_value js_resize_region(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Region* r = nullptr;
  uint64_t length = 0;
  if (!get_args(env, info, 2, argv) || !get_region(env, argv[0], &r) || !get_size(env, argv[1], &length)) {
    return nullptr;
  }
  if (length == 0 || r->closed.load()) return fail(env, "bad resizeRegion arguments");
  int rc = region_resize(r, static_cast<size_t>(length));
  if (rc == 0) report(env, r, external_cost(r->size) - r->reported);
  return make_int(env, rc);
}

// faultKind(handle) -> what the guard absorbed in the mapping's range: 0 nothing, 1 a fault
// of a file that shrank or could not be read (SIGBUS), 2 a protection fault (SIGSEGV). One
// call, because every access to a mapping's views asks it.
napi_value js_fault_kind(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Region* r = nullptr;
  if (!get_args(env, info, 1, argv) || !get_region(env, argv[0], &r)) return nullptr;
  return make_int(env, region_faults(r) > 0 ? 1 : region_violations(r) > 0 ? 2 : 0);
}

// faultFirst(handle) -> [kind, offset, time in ms since the epoch, faults so far] of the
// range's first absorbed fault (kind: mm::FaultKind bits), or undefined if none.
napi_value js_fault_first(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Region* r = nullptr;
  if (!get_args(env, info, 1, argv) || !get_region(env, argv[0], &r)) return nullptr;
  mm::GuardFault fault;
  if (r->guard_slot < 0 || !mm::guard_first_fault(r->guard_slot, &fault)) return make_undefined(env);
  napi_value result = nullptr, kind = nullptr, offset = nullptr, time = nullptr, count = nullptr;
  if (napi_create_array_with_length(env, 4, &result) != napi_ok ||
      napi_create_double(env, static_cast<double>(region_faults(r)) + region_violations(r), &count) != napi_ok ||
      napi_set_element(env, result, 3, count) != napi_ok ||
      napi_create_uint32(env, fault.kind, &kind) != napi_ok ||
      napi_create_double(env, static_cast<double>(fault.offset), &offset) != napi_ok ||
      napi_create_double(env, static_cast<double>(fault.time_ns) / 1e6, &time) != napi_ok ||
      napi_set_element(env, result, 0, kind) != napi_ok || napi_set_element(env, result, 1, offset) != napi_ok ||
      napi_set_element(env, result, 2, time) != napi_ok) {
    return fail(env, "could not describe a fault");
  }
  return result;
}

namespace {

// The event loop the guard wakes after a fault: libuv's async handle, the one libuv call that
// may be made from a signal handler. Found at run time (dlsym), so that the addon still loads
// where the runtime has no libuv; set up once, for the first environment that asks (the main
// thread's: src/mapping.ts asks only there), and never freed.
using AsyncInit = int (*)(uv_loop_t*, uv_async_t*, uv_async_cb);
using AsyncSend = int (*)(uv_async_t*);
using Unref = void (*)(uv_handle_t*);
using Close = void (*)(uv_handle_t*, uv_close_cb);
struct FaultNotice {
  uv_async_t async;
  AsyncSend send = nullptr;
  Close close = nullptr;
  napi_env env = nullptr;
  napi_ref callback = nullptr;
  napi_async_context context = nullptr;
};
FaultNotice* g_notice = nullptr;

void notify_fault() { g_notice->send(&g_notice->async); }

void on_fault_notice(uv_async_t*) {
  FaultNotice* n = g_notice;
  // A fault taken while the callback (or the microtasks it ends with) runs sends a notice
  // that an unreferenced handle may never see: the loop can end first. So call again while
  // the guard's epoch moved meanwhile (a few rounds at most; later faults wait for the next).
  for (int round = 0; round < 8; round++) {
    uint32_t epoch = __atomic_load_n(&mm::guard_epoch()->epoch, __ATOMIC_ACQUIRE);
    napi_handle_scope scope = nullptr;
    if (napi_open_handle_scope(n->env, &scope) != napi_ok) return;
    napi_value callback = nullptr, global = nullptr, result = nullptr;
    if (napi_get_reference_value(n->env, n->callback, &callback) == napi_ok && callback != nullptr &&
        napi_get_global(n->env, &global) == napi_ok) {
      if (napi_make_callback(n->env, n->context, global, callback, 0, nullptr, &result) == napi_pending_exception) {
        napi_value error = nullptr;
        if (napi_get_and_clear_last_exception(n->env, &error) == napi_ok) napi_fatal_exception(n->env, error);
      }
    }
    napi_close_handle_scope(n->env, scope);
    if (__atomic_load_n(&mm::guard_epoch()->epoch, __ATOMIC_ACQUIRE) == epoch) return;
  }
}

void end_fault_notice(void*) {
  // The environment goes: no more notices (a handler that loaded the pointer already still
  // sends to a handle that is closing, which libuv tolerates until the loop is gone).
  mm::guard_set_notify(nullptr);
  g_notice->close(reinterpret_cast<uv_handle_t*>(&g_notice->async), nullptr);
}

}  // namespace

// faultNotify(callback) -> true once the guard wakes this environment's event loop after every
// absorbed fault and calls `callback` there; false where that cannot be set up.
napi_value js_fault_notify(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return nullptr;
  napi_value result = nullptr;
  if (g_notice != nullptr) {
    napi_get_boolean(env, g_notice->env == env, &result);
    return result;
  }
  auto init = reinterpret_cast<AsyncInit>(dlsym(RTLD_DEFAULT, "uv_async_init"));
  auto send = reinterpret_cast<AsyncSend>(dlsym(RTLD_DEFAULT, "uv_async_send"));
  auto unref = reinterpret_cast<Unref>(dlsym(RTLD_DEFAULT, "uv_unref"));
  auto close = reinterpret_cast<Close>(dlsym(RTLD_DEFAULT, "uv_close"));
  uv_loop_t* loop = nullptr;
  bool ok = init != nullptr && send != nullptr && unref != nullptr && close != nullptr &&
            napi_get_uv_event_loop(env, &loop) == napi_ok && loop != nullptr;
  FaultNotice* n = ok ? new (std::nothrow) FaultNotice() : nullptr;
  napi_value name = nullptr;
  ok = n != nullptr && napi_create_reference(env, argv[0], 1, &n->callback) == napi_ok &&
       napi_create_string_utf8(env, "memmap.fault", NAPI_AUTO_LENGTH, &name) == napi_ok &&
       napi_async_init(env, nullptr, name, &n->context) == napi_ok && init(loop, &n->async, on_fault_notice) == 0;
  if (!ok) {
    napi_get_boolean(env, false, &result);
    return result;  // (a FaultNotice that failed half-way is left: once per process at most)
  }
  unref(reinterpret_cast<uv_handle_t*>(&n->async));  // a notice never keeps the process alive
  n->send = send;
  n->close = close;
  n->env = env;
  g_notice = n;
  napi_add_env_cleanup_hook(env, end_fault_notice, nullptr);
  mm::guard_set_notify(notify_fault);
  napi_get_boolean(env, true, &result);
  return result;
}

// faultEpoch() -> an ArrayBuffer over the guard's epoch word (guard.h), which grows by one
// after every fault the guard absorbs: [epoch, probe] as two 32-bit words. The word lives as
// long as the process, so the buffer has no finalizer. probeEpoch(value) writes `probe`, so
// that the caller can check its view reads the real word and not a copy.
napi_value js_fault_epoch(napi_env env, napi_callback_info) {
  napi_value buffer = nullptr;
  if (napi_create_external_arraybuffer(env, mm::guard_epoch(), sizeof(mm::GuardEpoch), nullptr, nullptr, &buffer) !=
      napi_ok) {
    return make_undefined(env);  // a runtime that refuses external memory: ask faultKind()
  }
  return buffer;
}

// guardInstall() -> 0 | -errno: puts the guard's handlers back in front if something replaced
// them (libuv does, for a process.on('SIGBUS') listener, and restores the default action when
// the listener goes).
napi_value js_guard_install(napi_env env, napi_callback_info) { return make_int(env, mm::guard_install()); }

napi_value js_probe_epoch(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t value = 0;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &value)) return nullptr;
  __atomic_store_n(&mm::guard_epoch()->probe, static_cast<uint32_t>(value), __ATOMIC_RELEASE);
  return make_undefined(env);
}

// fd(handle) -> the descriptor of a file region, or -1.
napi_value js_region_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Region* r = nullptr;
  if (!get_args(env, info, 1, argv) || !get_region(env, argv[0], &r)) return nullptr;
  return make_int(env, r->closed.load() ? -1 : r->fd);
}

// regionCounts() -> [regions alive, bytes they keep mapped, bytes of those that are zero-page
// stand-ins under views of closed ranges, how many stand-ins, regions and stand-ins made and
// stand-ins unmapped ever], for the leak tests, the stand-in budgets and the hint of ENOMEM.
napi_value js_region_counts(napi_env env, napi_callback_info) {
  RegionCounts counts = region_counts();
  napi_value result = nullptr, regions = nullptr, bytes = nullptr, standing = nullptr, count = nullptr,
             events = nullptr;
  if (napi_create_array_with_length(env, 5, &result) != napi_ok ||
      napi_create_double(env, static_cast<double>(counts.regions), &regions) != napi_ok ||
      napi_create_double(env, static_cast<double>(counts.mapped_bytes), &bytes) != napi_ok ||
      napi_create_double(env, static_cast<double>(counts.standing_bytes), &standing) != napi_ok ||
      napi_set_element(env, result, 0, regions) != napi_ok ||
      napi_create_double(env, static_cast<double>(counts.standing), &count) != napi_ok ||
      napi_set_element(env, result, 1, bytes) != napi_ok || napi_set_element(env, result, 2, standing) != napi_ok ||
      napi_create_double(env, static_cast<double>(counts.events), &events) != napi_ok ||
      napi_set_element(env, result, 3, count) != napi_ok || napi_set_element(env, result, 4, events) != napi_ok) {
    return fail(env, "could not count regions");
  }
  return result;
}

// setSplitRoom(room): how many kernel mappings unmapping gone stand-ins from the middle of a
// run may add until the next mapping-count check.
napi_value js_set_split_room(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint64_t room = 0;
  if (!get_args(env, info, 1, argv) || !get_size(env, argv[0], &room)) return nullptr;
  region_set_split_room(static_cast<int64_t>(room));
  return nullptr;
}

// mappingCount() -> the process's kernel mappings (what vm.max_map_count caps), or -errno.
napi_value js_mapping_count(napi_env env, napi_callback_info) {
  napi_value result = nullptr;
  napi_create_double(env, static_cast<double>(mm::count_mappings()), &result);
  return result;
}

// faultsAbsorbed() -> every fault the guard absorbed in this process.
napi_value js_faults_absorbed(napi_env env, napi_callback_info) {
  napi_value result = nullptr;
  napi_create_double(env, static_cast<double>(mm::guard_absorbed_total()), &result);
  return result;
}

// violationsAbsorbed() -> every protection fault the guard absorbed in this process.
napi_value js_violations_absorbed(napi_env env, napi_callback_info) {
  napi_value result = nullptr;
  napi_create_double(env, static_cast<double>(mm::guard_violations_total()), &result);
  return result;
}

// mapAnonymous(length, shared, flags, hint) -> handle | -errno; hint 0: anywhere.
napi_value js_map_anonymous(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint64_t length = 0, hint = 0;
  bool shared = false;
  int32_t flags = 0;
  if (!get_args(env, info, 4, argv) || !get_size(env, argv[0], &length) ||
      !get_bool(env, argv[1], &shared) || !get_int(env, argv[2], &flags) || !get_size(env, argv[3], &hint)) {
    return nullptr;
  }
  if (length == 0) return fail(env, "bad mapAnonymous arguments");
  // Huge pages are mapped and unmapped whole: the region spans whole huge pages.
  uint64_t huge = flags & mm::kHugePages1G ? uint64_t{1} << 30 : flags & mm::kHugePages2M ? uint64_t{2} << 20 : 0;
  if (huge != 0) length = (length + huge - 1) / huge * huge;
  int rc = mm::guard_install();
  if (rc < 0) return make_int(env, rc);
  void* addr = nullptr;
  rc = mm::map_anonymous(length, shared, flags, static_cast<uintptr_t>(hint), &addr);
  if (rc < 0) return make_int(env, rc);
  // Registered so that a stray access after protect() is absorbed like one in a file range,
  // and a huge page the pool could not supply (SIGBUS) reads as zeros.
  mm::GuardRange range;
  range.granule = static_cast<size_t>(huge);
  range.writable = true;
  range.shared = shared;
  int slot = mm::guard_register(addr, length, range);
  if (slot < 0) {
    mm::unmap(addr, length);
    return make_int(env, slot);
  }
  Region* r = new Region(addr, length, -1);
  r->guard_slot = slot;
  return wrap_region(env, r);
}

// view(handle, start, length) -> ArrayBuffer over [start, start + length) of the region.
napi_value js_view(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  if (!get_args(env, info, 3, argv) || !get_range(env, argv, &r, &start, &length)) return nullptr;
  if (r->closed.load()) return fail(env, "view of a closed mapping");
  region_retain(r);  // for the backing store (finalize_view)
  region_retain(r);  // for the object (finalize_view_object)
  r->views.fetch_add(1, std::memory_order_acq_rel);
  napi_value buffer = nullptr;
  if (napi_create_external_arraybuffer(env, at(r, start), length, finalize_view, r, &buffer) !=
      napi_ok) {
    // Node may already have called finalize_view when creation fails (it builds the buffer
    // through node::Buffer::New, which frees what it was given on failure), so releasing here
    // could release twice. Keeping one reference too many only keeps the range mapped until
    // close(); TypeScript checks the runtime's size limit first so this is not reached.
    return fail(env, "could not create an ArrayBuffer over the mapping");
  }
  if (napi_add_finalizer(env, buffer, r, finalize_view_object, nullptr, nullptr) != napi_ok) {
    // Without the object's finalizer the view never ends, so the range is held (as a stand-in
    // after close) until the process exits: safe, if wasteful; it is not expected to happen.
    return fail(env, "could not watch the ArrayBuffer over the mapping");
  }
  return buffer;
}

// detach(arrayBuffer): every view over it reads as empty from now on.
napi_value js_detach(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return nullptr;
  if (napi_detach_arraybuffer(env, argv[0]) != napi_ok) return fail(env, "could not detach");
  return make_undefined(env);
}

// sharedView(handle, start, length) -> SharedArrayBuffer, or undefined when this runtime has
// no Node-API call for it (the caller then tries the V8 helper addon).
napi_value js_shared_view(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  if (!get_args(env, info, 3, argv) || !get_range(env, argv, &r, &start, &length)) return nullptr;
  CreateExternalSab create = find_create_external_sab();
  if (create == nullptr) return make_undefined(env);
  if (r->closed.load()) return fail(env, "view of a closed mapping");
  region_retain(r);
  r->views.fetch_add(1, std::memory_order_acq_rel);
  r->shared_views.fetch_add(1, std::memory_order_acq_rel);
  napi_value sab = nullptr;
  if (create(env, at(r, start), length, release_shared_view_noenv, r, &sab) != napi_ok) {
    release_shared_view(nullptr, 0, r);
    return fail(env, "could not create a SharedArrayBuffer over the mapping");
  }
  return sab;
}

// sharedViewParts(handle, start, length) -> [address, deleter, hint] as BigInts, for the V8
// helper addon (native/v8/sab.cc), which wraps them in a SharedArrayBuffer. The reference
// taken here belongs to that backing store: its deleter gives it back. If the helper cannot
// use the parts, releaseSharedViewParts(hint) gives it back instead.
napi_value js_shared_view_parts(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  if (!get_args(env, info, 3, argv) || !get_range(env, argv, &r, &start, &length)) return nullptr;
  if (r->closed.load()) return fail(env, "view of a closed mapping");
  napi_value parts = nullptr, address = nullptr, deleter = nullptr, hint = nullptr;
  if (napi_create_array_with_length(env, 3, &parts) != napi_ok ||
      napi_create_bigint_uint64(env, reinterpret_cast<uintptr_t>(at(r, start)), &address) !=
          napi_ok ||
      napi_create_bigint_uint64(env, reinterpret_cast<uintptr_t>(&release_shared_view),
                                &deleter) != napi_ok ||
      napi_create_bigint_uint64(env, reinterpret_cast<uintptr_t>(r), &hint) != napi_ok ||
      napi_set_element(env, parts, 0, address) != napi_ok ||
      napi_set_element(env, parts, 1, deleter) != napi_ok ||
      napi_set_element(env, parts, 2, hint) != napi_ok) {
    return fail(env, "could not describe the mapping");
  }
  region_retain(r);
  r->views.fetch_add(1, std::memory_order_acq_rel);
  r->shared_views.fetch_add(1, std::memory_order_acq_rel);
  return parts;
}

// releaseSharedViewParts(handle): gives back the reference sharedViewParts took when the
// helper addon could not be used.
napi_value js_release_shared_view_parts(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Region* r = nullptr;
  if (!get_args(env, info, 1, argv) || !get_region(env, argv[0], &r)) return nullptr;
  release_shared_view(nullptr, 0, r);
  return make_undefined(env);
}

// close(handle) -> 0 | -errno. Idempotent.
napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Region* r = nullptr;
  if (!get_args(env, info, 1, argv) || !get_region(env, argv[0], &r)) return nullptr;
  if (r->reported != 0) report(env, r, -r->reported);
  return make_int(env, region_close(r));
}

// flush(handle, start, length, syncFile) -> 0 | -errno. Waits for the write-back.
napi_value js_flush(napi_env env, napi_callback_info info) {
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  bool sync_file = false;
  int32_t how = 0;
  if (!get_flush_args(env, info, &r, &start, &length, &sync_file, &how)) return nullptr;
  if (r->closed.load()) return make_int(env, -EBADF);
  return make_int(env, flush_range(r, at(r, start), length, sync_file, how));
}

// flushAsync(handle, start, length, syncFile) -> Promise<0 | -errno>, run on libuv's pool
// like the fs calls it resembles.
napi_value js_flush_async(napi_env env, napi_callback_info info) {
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  bool sync_file = false;
  int32_t how = 0;
  if (!get_flush_args(env, info, &r, &start, &length, &sync_file, &how)) return nullptr;
  napi_value promise = nullptr;
  FlushWork* w = new FlushWork{r, at(r, start), static_cast<size_t>(length), sync_file, how};
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok) {
    delete w;
    return fail(env, "could not start an asynchronous flush");
  }
  int rc = r->closed.load() ? -EBADF : 0;
  mm::FileInfo file{};
  if (rc == 0 && r->fd >= 0) {
    w->fd = mm::duplicate_fd(r->fd);
    rc = w->fd < 0 ? w->fd : mm::file_info(w->fd, &file);
    w->size_covered = file.size;
  }
  if (rc < 0) {
    if (w->fd >= 0) mm::close_fd(w->fd);
    napi_resolve_deferred(env, w->deferred, make_int(env, rc));
    delete w;
    return promise;
  }
  region_retain(r);
  r->busy++;
  if (!queue_flush(env, w)) flush_complete(env, napi_generic_failure, w);
  return promise;
}

// advise(handle, start, length, advice) -> 0 | -errno.
napi_value js_advise(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  int32_t advice = 0;
  if (!get_args(env, info, 4, argv) || !get_range(env, argv, &r, &start, &length) ||
      !get_int(env, argv[3], &advice)) {
    return nullptr;
  }
  if (r->closed.load()) return make_int(env, -EBADF);
  if (length == 0) return make_int(env, 0);
  region_note_split();
  return make_int(env, mm::advise(at(r, start), length, static_cast<mm::Advice>(advice)));
}

// byteSum(typedArray) -> BigInt: the unsigned 64-bit sum of its bytes.
napi_value js_byte_sum(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return nullptr;
  napi_typedarray_type type;
  size_t count = 0, offset = 0;
  void* data = nullptr;
  napi_value backing = nullptr;
  if (napi_get_typedarray_info(env, argv[0], &type, &count, &data, &backing, &offset) != napi_ok ||
      type != napi_uint8_array) {
    return fail(env, "byteSum expects a Uint8Array");
  }
  // A detached array reports no data and a length of 0, and sums to 0.
  uint64_t sum = data != nullptr && count > 0 ? mm::byte_sum(data, count) : 0;
  napi_value result = nullptr;
  napi_create_bigint_uint64(env, sum, &result);
  return result;
}

}  // namespace memmap
