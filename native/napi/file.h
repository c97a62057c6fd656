// The Node-API callbacks for file descriptors (file.cc), registered by addon.cc. memmap opens,
// inspects and closes the descriptors behind its mappings itself rather than through the
// runtime's fs module, because some runtimes (Deno) hand out resource ids from fs that are
// not the process's file descriptors, and a mapping must own a real one.
#ifndef MEMMAP_NAPI_FILE_H_
#define MEMMAP_NAPI_FILE_H_

#include <node_api.h>

namespace memmap {

napi_value js_open_file(napi_env env, napi_callback_info info);
napi_value js_file_info(napi_env env, napi_callback_info info);
napi_value js_open_shared(napi_env env, napi_callback_info info);
napi_value js_unlink_shared(napi_env env, napi_callback_info info);
napi_value js_open_path(napi_env env, napi_callback_info info);
napi_value js_change_mode(napi_env env, napi_callback_info info);
napi_value js_create_memory_file(napi_env env, napi_callback_info info);
napi_value js_add_seals(napi_env env, napi_callback_info info);
napi_value js_get_seals(napi_env env, napi_callback_info info);
napi_value js_resize_file(napi_env env, napi_callback_info info);
napi_value js_reserve_file(napi_env env, napi_callback_info info);
napi_value js_close_fd(napi_env env, napi_callback_info info);
napi_value js_dup_fd(napi_env env, napi_callback_info info);

}  // namespace memmap

#endif  // MEMMAP_NAPI_FILE_H_
