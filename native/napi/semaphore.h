// The Node-API callbacks for named POSIX semaphores (semaphore.cc), registered by addon.cc.
#ifndef MEMMAP_NAPI_SEMAPHORE_H_
#define MEMMAP_NAPI_SEMAPHORE_H_

#include <node_api.h>

namespace memmap {

napi_value js_sem_open(napi_env env, napi_callback_info info);
napi_value js_sem_close(napi_env env, napi_callback_info info);
napi_value js_sem_unlink(napi_env env, napi_callback_info info);
napi_value js_sem_post(napi_env env, napi_callback_info info);
napi_value js_sem_wait(napi_env env, napi_callback_info info);
napi_value js_sem_try_wait(napi_env env, napi_callback_info info);
napi_value js_sem_value(napi_env env, napi_callback_info info);
napi_value js_sem_state(napi_env env, napi_callback_info info);
napi_value js_sem_size(napi_env env, napi_callback_info info);

}  // namespace memmap

#endif  // MEMMAP_NAPI_SEMAPHORE_H_
