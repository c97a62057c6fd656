// Robust lock words for JavaScript (os/lock.h): each callback takes the Int32Array of a lock
// record (kLockRecordSize bytes, 8-aligned, as src/sync/mutex.ts places it) and runs on the
// calling thread, which is the one that owns or takes the lock.
#include "lock.h"

#include <cerrno>
#include <cstdint>

#include "../os/futex.h"
#include "../os/lock.h"
#include "glue.h"
#include "waiter.h"

namespace memmap {

namespace {

// The record's lock word, from the handle lockRecord made: an External that carries the
// word's address, so that the hot path reads no typed array. The Mutex that holds the handle
// also holds the record's Int32Array, which keeps the memory (or, after close(), its harmless
// stand-in) mapped; TypeScript checks close() before each call.
bool get_handle(napi_env env, napi_value handle, uint32_t** out) {
  void* data = nullptr;
  // Only napi_get_value_external (is it an External at all?), not the type tag check of
  // get_tagged, which costs as much again as the rest of an uncontended lock: the handle is a
  // private field of Mutex, made by lockRecord, never a value a caller passes in.
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == nullptr) {
    fail(env, "memmap addon expected a lock record handle");
    return false;
  }
  *out = static_cast<uint32_t*>(data);
  return true;
}

// The record's lock word: the Int32Array must cover a whole, 8-aligned record.
bool get_record(napi_env env, napi_value array, uint32_t** out) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, array, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_int32_array || length * 4 < mm::kLockRecordSize || data == nullptr ||
      reinterpret_cast<uintptr_t>(data) % 8 != 0) {
    fail(env, "a lock expects the Int32Array of a whole, 8-aligned record");
    return false;
  }
  *out = static_cast<uint32_t*>(data);
  return true;
}

// Once per JavaScript thread: when its environment ends (a worker terminated, the process
// exiting), the locks it still holds are handed on before its mappings are unmapped. Cleanup
// hooks run in the reverse order of their registration, so this one (added at the thread's
// first lock) runs before the finalizers that unmap.
thread_local bool t_hooked = false;

void abandon(void*) { mm::lock_abandon_all(); }

inline void hook(napi_env env) {
  if (__builtin_expect(t_hooked, 1)) return;
  t_hooked = napi_add_env_cleanup_hook(env, abandon, nullptr) == napi_ok;
}

}  // namespace

// lockCheck(record) -> 0 | -EINVAL (not 8-aligned in memory) | why this thread cannot lock.
napi_value js_lock_check(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type;
  if (!get_args(env, info, 1, argv) ||
      napi_get_typedarray_info(env, argv[0], &type, &length, &data, nullptr, nullptr) != napi_ok) {
    return nullptr;
  }
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) return make_int(env, -EINVAL);
  return make_int(env, mm::lock_usable());
}

// lockRecord(record) -> the handle the other calls take, for an 8-aligned whole record.
napi_value js_lock_record(napi_env env, napi_callback_info info) {
  napi_value argv[1], handle = nullptr;
  uint32_t* word = nullptr;
  if (!get_args(env, info, 1, argv) || !get_record(env, argv[0], &word)) return nullptr;
  if (napi_create_external(env, word, nullptr, nullptr, &handle) != napi_ok) {
    return fail(env, "could not make a lock record handle");
  }
  return handle;
}

// lockAddress(record) -> the lock word's address in this process (below 2^53 on every
// 64-bit platform Node runs on), a key for the JavaScript side's table of held locks.
napi_value js_lock_address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint32_t* word = nullptr;
  if (!get_args(env, info, 1, argv) || !get_handle(env, argv[0], &word)) return nullptr;
  napi_value result = nullptr;
  napi_create_double(env, static_cast<double>(reinterpret_cast<uintptr_t>(word)), &result);
  return result;
}

// lockTry(record, waited) -> 0 acquired | 1 owner died | 2 busy | -errno.
napi_value js_lock_try(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t* word = nullptr;
  bool waited = false;
  if (!get_args(env, info, 2, argv) || !get_handle(env, argv[0], &word) || !get_bool(env, argv[1], &waited)) {
    return nullptr;
  }
  hook(env);
  return make_int(env, mm::lock_try(word, waited));
}

// lockWait(record, timeoutNs) -> as lockTry, or -ETIMEDOUT (timeoutNs < 0: no limit).
napi_value js_lock_wait(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint32_t* word = nullptr;
  double timeout = -1;
  if (!get_args(env, info, 2, argv) || !get_handle(env, argv[0], &word) ||
      napi_get_value_double(env, argv[1], &timeout) != napi_ok) {
    return nullptr;
  }
  hook(env);
  if (!can_run_js(env)) return make_int(env, -ECANCELED);
  return make_int(env, mm::lock_wait(word, mm::timeout_ns(timeout)));
}

// lockWaitEnd(): a sync wait that gave up clears the thread's list_op_pending.
napi_value js_lock_wait_end(napi_env env, napi_callback_info) {
  mm::lock_wait_end();
  return make_undefined(env);
}

// lockRelease(record) -> 0 | -EPERM.
napi_value js_lock_release(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint32_t* word = nullptr;
  if (!get_args(env, info, 1, argv) || !get_handle(env, argv[0], &word)) return nullptr;
  return make_int(env, mm::lock_release(word));
}

// lockHeld(record) -> whether this thread holds it.
napi_value js_lock_held(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint32_t* word = nullptr;
  if (!get_args(env, info, 1, argv) || !get_handle(env, argv[0], &word)) return nullptr;
  napi_value result = nullptr;
  napi_get_boolean(env, mm::lock_held(word), &result);
  return result;
}

// lockTestStop(step): for tests, stop the process (SIGSTOP) at a step of lock or unlock.
napi_value js_lock_test_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t step = 0;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &step)) return nullptr;
  mm::lock_test_stop(step);
  return make_undefined(env);
}

}  // namespace memmap
