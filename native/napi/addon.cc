// Module initialisation: the table of what the addon exports. Only stable Node-API (version 8)
// is used here and in every file this addon links, so the same binary loads in Node, Bun and
// Deno; see mapping.cc for the one experimental call, looked up at run time.
#include <node_api.h>

#include "../os/guard.h"
#include "../os/mm.h"
#include "file.h"
#include "glue.h"
#include "lock.h"
#include "mapping.h"
#include "semaphore.h"
#include "tuning.h"
#include "waiter.h"

namespace memmap {

namespace {

// One exported function of the table below.
#define FUNCTION(name, callback) \
  { name, nullptr, callback, nullptr, nullptr, nullptr, napi_enumerable, nullptr }

napi_value init(napi_env env, napi_value exports) {
  // The fault guard goes in when the addon loads, so that it is in place before the first
  // mapping; mapFile checks it again in case another handler replaced it since.
  mm::guard_install();
  const napi_property_descriptor functions[] = {
      FUNCTION("mapFile", js_map_file),
      FUNCTION("mapAnonymous", js_map_anonymous),
      FUNCTION("remapFile", js_remap_file),
      FUNCTION("resizeRegion", js_resize_region),
      FUNCTION("lockHeldIn", js_lock_held_in),
      FUNCTION("faultKind", js_fault_kind),
      FUNCTION("faultEpoch", js_fault_epoch),
      FUNCTION("probeEpoch", js_probe_epoch),
      FUNCTION("guardInstall", js_guard_install),
      FUNCTION("violationsAbsorbed", js_violations_absorbed),
      FUNCTION("protect", js_protect),
      FUNCTION("bindRange", js_bind_range),
      FUNCTION("fd", js_region_fd),
      FUNCTION("regionCounts", js_region_counts),
      FUNCTION("mappingCount", js_mapping_count),
      FUNCTION("faultFirst", js_fault_first),
      FUNCTION("faultNotify", js_fault_notify),
      FUNCTION("setSplitRoom", js_set_split_room),
      FUNCTION("faultsAbsorbed", js_faults_absorbed),
      FUNCTION("view", js_view),
      FUNCTION("detach", js_detach),
      FUNCTION("sharedView", js_shared_view),
      FUNCTION("sharedViewParts", js_shared_view_parts),
      FUNCTION("releaseSharedViewParts", js_release_shared_view_parts),
      FUNCTION("close", js_close),
      FUNCTION("flush", js_flush),
      FUNCTION("flushAsync", js_flush_async),
      FUNCTION("advise", js_advise),
      FUNCTION("byteSum", js_byte_sum),
      FUNCTION("waiterInit", js_waiter_init),
      FUNCTION("futexWait", js_futex_wait),
      FUNCTION("futexWake", js_futex_wake),
      FUNCTION("futexWaitAsync", js_futex_wait_async),
      FUNCTION("futexCancel", js_futex_cancel),
      FUNCTION("waiterThreads", js_waiter_threads),
      FUNCTION("threadIds", js_thread_ids),
      FUNCTION("lockCheck", js_lock_check),
      FUNCTION("lockRecord", js_lock_record),
      FUNCTION("lockTry", js_lock_try),
      FUNCTION("lockWait", js_lock_wait),
      FUNCTION("lockWaitEnd", js_lock_wait_end),
      FUNCTION("lockRelease", js_lock_release),
      FUNCTION("lockHeld", js_lock_held),
      FUNCTION("lockAddress", js_lock_address),
      FUNCTION("lockTestStop", js_lock_test_stop),
      FUNCTION("semOpen", js_sem_open),
      FUNCTION("semClose", js_sem_close),
      FUNCTION("semUnlink", js_sem_unlink),
      FUNCTION("semPost", js_sem_post),
      FUNCTION("semWait", js_sem_wait),
      FUNCTION("semTryWait", js_sem_try_wait),
      FUNCTION("semValue", js_sem_value),
      FUNCTION("semState", js_sem_state),
      FUNCTION("semSize", js_sem_size),
      FUNCTION("lockRange", js_lock_range),
      FUNCTION("unlockRange", js_unlock_range),
      FUNCTION("residency", js_residency),
      FUNCTION("fileResidency", js_file_residency),
      FUNCTION("prefetchFile", js_prefetch_file),
      FUNCTION("evictFile", js_evict_file),
      FUNCTION("memlockLimit", js_memlock_limit),
      FUNCTION("regionAddress", js_region_address),
      FUNCTION("openFile", js_open_file),
      FUNCTION("fileInfo", js_file_info),
      FUNCTION("openShared", js_open_shared),
      FUNCTION("openPath", js_open_path),
      FUNCTION("changeMode", js_change_mode),
      FUNCTION("unlinkShared", js_unlink_shared),
      FUNCTION("createMemoryFile", js_create_memory_file),
      FUNCTION("addSeals", js_add_seals),
      FUNCTION("getSeals", js_get_seals),
      FUNCTION("resizeFile", js_resize_file),
      FUNCTION("reserveFile", js_reserve_file),
      FUNCTION("closeFd", js_close_fd),
      FUNCTION("dupFd", js_dup_fd),
      {"pageSize", nullptr, nullptr, nullptr, nullptr, make_int(env, mm::page_size()),
       napi_enumerable, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof(functions) / sizeof(functions[0]), functions) !=
      napi_ok) {
    return nullptr;
  }
  return exports;
}

#undef FUNCTION

}  // namespace

}  // namespace memmap

NAPI_MODULE(NODE_GYP_MODULE_NAME, memmap::init)
