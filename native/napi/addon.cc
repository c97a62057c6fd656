// Module initialisation: the table of what the addon exports. Only stable Node-API (version 8)
// is used here and in every file this addon links, so the same binary loads in Node, Bun and
// Deno; see mapping.cc for the one experimental call, looked up at run time.
#include <node_api.h>

#include "../os/guard.h"
#include "../os/mm.h"
#include "file.h"
#include "glue.h"
#include "mapping.h"
#include "semaphore.h"
#include "waiter.h"

namespace memmap {

namespace {

napi_value init(napi_env env, napi_value exports) {
  // The fault guard goes in when the addon loads, so that it is in place before the first
  // mapping; mapFile checks it again in case another handler replaced it since.
  mm::guard_install();
  const napi_property_descriptor functions[] = {
      {"mapFile", nullptr, js_map_file, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"mapAnonymous", nullptr, js_map_anonymous, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"remapFile", nullptr, js_remap_file, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"faults", nullptr, js_faults, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"retire", nullptr, js_retire, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"fd", nullptr, js_region_fd, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"regionCounts", nullptr, js_region_counts, nullptr, nullptr, nullptr, napi_enumerable,
       nullptr},
      {"faultsAbsorbed", nullptr, js_faults_absorbed, nullptr, nullptr, nullptr, napi_enumerable,
       nullptr},
      {"view", nullptr, js_view, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"detach", nullptr, js_detach, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"sharedView", nullptr, js_shared_view, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"sharedViewParts", nullptr, js_shared_view_parts, nullptr, nullptr, nullptr, napi_enumerable,
       nullptr},
      {"releaseSharedViewParts", nullptr, js_release_shared_view_parts, nullptr, nullptr, nullptr,
       napi_enumerable, nullptr},
      {"close", nullptr, js_close, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"flush", nullptr, js_flush, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"flushAsync", nullptr, js_flush_async, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"advise", nullptr, js_advise, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"byteSum", nullptr, js_byte_sum, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"waiterInit", nullptr, js_waiter_init, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"futexWait", nullptr, js_futex_wait, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"futexWake", nullptr, js_futex_wake, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"futexWaitAsync", nullptr, js_futex_wait_async, nullptr, nullptr, nullptr, napi_enumerable,
       nullptr},
      {"futexCancel", nullptr, js_futex_cancel, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"waiterThreads", nullptr, js_waiter_threads, nullptr, nullptr, nullptr, napi_enumerable,
       nullptr},
      {"threadIds", nullptr, js_thread_ids, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"threadAlive", nullptr, js_thread_alive, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"semOpen", nullptr, js_sem_open, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"semClose", nullptr, js_sem_close, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"semUnlink", nullptr, js_sem_unlink, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"semPost", nullptr, js_sem_post, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"semWait", nullptr, js_sem_wait, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"semTryWait", nullptr, js_sem_try_wait, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"semValue", nullptr, js_sem_value, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"semState", nullptr, js_sem_state, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"openFile", nullptr, js_open_file, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"fileInfo", nullptr, js_file_info, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"openShared", nullptr, js_open_shared, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"unlinkShared", nullptr, js_unlink_shared, nullptr, nullptr, nullptr, napi_enumerable,
       nullptr},
      {"createMemoryFile", nullptr, js_create_memory_file, nullptr, nullptr, nullptr,
       napi_enumerable, nullptr},
      {"addSeals", nullptr, js_add_seals, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"getSeals", nullptr, js_get_seals, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"resizeFile", nullptr, js_resize_file, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"closeFd", nullptr, js_close_fd, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"dupFd", nullptr, js_dup_fd, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"pageSize", nullptr, nullptr, nullptr, nullptr, make_int(env, mm::page_size()),
       napi_enumerable, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof(functions) / sizeof(functions[0]), functions) !=
      napi_ok) {
    return nullptr;
  }
  return exports;
}

}  // namespace

}  // namespace memmap

NAPI_MODULE(NODE_GYP_MODULE_NAME, memmap::init)
