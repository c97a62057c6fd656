// The Node-API callbacks for futex waits (waiter.cc), registered by addon.cc.
#ifndef MEMMAP_NAPI_WAITER_H_
#define MEMMAP_NAPI_WAITER_H_

#include <node_api.h>

#include <cerrno>
#include <cstddef>

namespace memmap {

// Whether JavaScript may still run in `env` (false once its teardown began).
bool can_run_js(napi_env env);

// The status an asynchronous wait ends with when the memory of its word is closed under it.
constexpr int kWaitClosed = -ESHUTDOWN;

// Ends, with kWaitClosed, every asynchronous wait on a word in [base, base + size): called
// before a closed mapping's range is unmapped or replaced by zero pages, where no wake could
// ever reach a waiter again.
void waiter_forget_range(const void* base, size_t size);

napi_value js_waiter_init(napi_env env, napi_callback_info info);
napi_value js_futex_wait(napi_env env, napi_callback_info info);
napi_value js_futex_wake(napi_env env, napi_callback_info info);
napi_value js_futex_wait_async(napi_env env, napi_callback_info info);
napi_value js_futex_cancel(napi_env env, napi_callback_info info);
napi_value js_waiter_threads(napi_env env, napi_callback_info info);
napi_value js_thread_ids(napi_env env, napi_callback_info info);

}  // namespace memmap

#endif  // MEMMAP_NAPI_WAITER_H_
