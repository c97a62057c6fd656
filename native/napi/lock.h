// The Node-API callbacks for robust lock words (lock.cc), registered by addon.cc.
#ifndef MEMMAP_NAPI_LOCK_H_
#define MEMMAP_NAPI_LOCK_H_

#include <node_api.h>

namespace memmap {

napi_value js_lock_check(napi_env env, napi_callback_info info);
napi_value js_lock_record(napi_env env, napi_callback_info info);
napi_value js_lock_try(napi_env env, napi_callback_info info);
napi_value js_lock_wait(napi_env env, napi_callback_info info);
napi_value js_lock_wait_end(napi_env env, napi_callback_info info);
napi_value js_lock_release(napi_env env, napi_callback_info info);
napi_value js_lock_held(napi_env env, napi_callback_info info);
napi_value js_lock_address(napi_env env, napi_callback_info info);
napi_value js_lock_test_stop(napi_env env, napi_callback_info info);

}  // namespace memmap

#endif  // MEMMAP_NAPI_LOCK_H_
