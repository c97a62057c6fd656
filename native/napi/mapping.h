// The Node-API callbacks for mappings (mapping.cc), registered by addon.cc.
#ifndef MEMMAP_NAPI_MAPPING_H_
#define MEMMAP_NAPI_MAPPING_H_

#include <node_api.h>

namespace memmap {

napi_value js_map_file(napi_env env, napi_callback_info info);
napi_value js_map_anonymous(napi_env env, napi_callback_info info);
napi_value js_remap_file(napi_env env, napi_callback_info info);
napi_value js_resize_region(napi_env env, napi_callback_info info);
napi_value js_lock_held_in(napi_env env, napi_callback_info info);
napi_value js_fault_kind(napi_env env, napi_callback_info info);
napi_value js_fault_epoch(napi_env env, napi_callback_info info);
napi_value js_probe_epoch(napi_env env, napi_callback_info info);
napi_value js_guard_install(napi_env env, napi_callback_info info);
napi_value js_violations_absorbed(napi_env env, napi_callback_info info);
napi_value js_region_fd(napi_env env, napi_callback_info info);
napi_value js_region_counts(napi_env env, napi_callback_info info);
napi_value js_mapping_count(napi_env env, napi_callback_info info);
napi_value js_fault_first(napi_env env, napi_callback_info info);
napi_value js_fault_notify(napi_env env, napi_callback_info info);
napi_value js_set_split_room(napi_env env, napi_callback_info info);
napi_value js_faults_absorbed(napi_env env, napi_callback_info info);
napi_value js_view(napi_env env, napi_callback_info info);
napi_value js_detach(napi_env env, napi_callback_info info);
napi_value js_shared_view(napi_env env, napi_callback_info info);
napi_value js_shared_view_parts(napi_env env, napi_callback_info info);
napi_value js_release_shared_view_parts(napi_env env, napi_callback_info info);
napi_value js_close(napi_env env, napi_callback_info info);
napi_value js_flush(napi_env env, napi_callback_info info);
napi_value js_flush_async(napi_env env, napi_callback_info info);
napi_value js_advise(napi_env env, napi_callback_info info);
napi_value js_byte_sum(napi_env env, napi_callback_info info);

}  // namespace memmap

#endif  // MEMMAP_NAPI_MAPPING_H_
