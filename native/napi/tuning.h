// The Node-API callbacks for tuning and introspection (tuning.cc), registered by addon.cc:
// locking ranges in RAM, page residency, the page cache of files, and the memlock limit.
#ifndef MEMMAP_NAPI_TUNING_H_
#define MEMMAP_NAPI_TUNING_H_

#include <node_api.h>

namespace memmap {

napi_value js_protect(napi_env env, napi_callback_info info);
napi_value js_bind_range(napi_env env, napi_callback_info info);
napi_value js_lock_range(napi_env env, napi_callback_info info);
napi_value js_unlock_range(napi_env env, napi_callback_info info);
napi_value js_residency(napi_env env, napi_callback_info info);
napi_value js_file_residency(napi_env env, napi_callback_info info);
napi_value js_prefetch_file(napi_env env, napi_callback_info info);
napi_value js_evict_file(napi_env env, napi_callback_info info);
napi_value js_memlock_limit(napi_env env, napi_callback_info info);
napi_value js_region_address(napi_env env, napi_callback_info info);

}  // namespace memmap

#endif  // MEMMAP_NAPI_TUNING_H_
