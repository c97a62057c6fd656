// Named semaphores for JavaScript. A handle is a type-tagged External over a small refcounted
// record; the state view (an ArrayBuffer over the semaphore's bytes, for asynchronous waits)
// holds a second reference, so the semaphore is closed only when both are gone or close() is
// called, and close() detaches the view first so that nothing can touch unmapped bytes.
#include "semaphore.h"

#include <cerrno>
#include <string>

#include "../os/sem.h"
#include "glue.h"

namespace memmap {

namespace {

const napi_type_tag kSemTag = {0x6d656d6d61702d73ULL, 0x656d6170686f7231ULL};

struct Sem {
  void* sem;
  bool closed = false;
  int refs = 1;
  napi_ref view = nullptr;  // weak: the state ArrayBuffer, if one was made
};

void release(napi_env env, Sem* s) {
  if (--s->refs > 0) return;
  if (!s->closed) mm::named_sem_close(s->sem);
  if (s->view != nullptr) napi_delete_reference(env, s->view);
  delete s;
}

void finalize(napi_env env, void* data, void*) { release(env, static_cast<Sem*>(data)); }

// The state view's finalizer: its data is the semaphore's bytes, the record is the hint.
void finalize_view(napi_env env, void*, void* hint) { release(env, static_cast<Sem*>(hint)); }

bool get_sem(napi_env env, napi_value value, Sem** out) {
  void* data = nullptr;
  if (!get_tagged(env, value, &kSemTag, "a semaphore handle", &data)) return false;
  *out = static_cast<Sem*>(data);
  return true;
}

// For the calls that take only a handle: the open semaphore, or nullptr with *rc set.
Sem* open_sem(napi_env env, napi_callback_info info, napi_value* rc) {
  napi_value argv[1];
  Sem* s = nullptr;
  *rc = nullptr;
  if (!get_args(env, info, 1, argv) || !get_sem(env, argv[0], &s)) return nullptr;
  if (s->closed) {
    *rc = make_int(env, -EBADF);
    return nullptr;
  }
  return s;
}

}  // namespace

// semOpen(name, create, exclusive, mode, value) -> handle | -errno.
napi_value js_sem_open(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  std::string name;
  bool create = false, exclusive = false;
  int32_t mode = 0, value = 0;
  if (!get_args(env, info, 5, argv) || !get_string(env, argv[0], &name) ||
      !get_bool(env, argv[1], &create) || !get_bool(env, argv[2], &exclusive) ||
      !get_int(env, argv[3], &mode) || !get_int(env, argv[4], &value)) {
    return nullptr;
  }
  void* sem = nullptr;
  int rc = mm::named_sem_open(name.c_str(), create, exclusive, mode, static_cast<unsigned>(value), &sem);
  if (rc < 0) return make_int(env, rc);
  Sem* s = new Sem{sem};
  napi_value handle = nullptr;
  if (napi_create_external(env, s, finalize, nullptr, &handle) != napi_ok) {
    mm::named_sem_close(sem);
    delete s;
    return fail(env, "could not make a semaphore handle");
  }
  napi_type_tag_object(env, handle, &kSemTag);
  return handle;
}

// semClose(handle) -> 0 | -errno. Detaches the state view before the bytes are unmapped.
napi_value js_sem_close(napi_env env, napi_callback_info info) {
  napi_value rc = nullptr;
  Sem* s = open_sem(env, info, &rc);
  if (s == nullptr) return rc;
  if (s->view != nullptr) {
    napi_value view = nullptr;
    if (napi_get_reference_value(env, s->view, &view) == napi_ok && view != nullptr) {
      napi_detach_arraybuffer(env, view);
    }
  }
  s->closed = true;
  return make_int(env, mm::named_sem_close(s->sem));
}

// semUnlink(name) -> 0 | -errno.
napi_value js_sem_unlink(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  std::string name;
  if (!get_args(env, info, 1, argv) || !get_string(env, argv[0], &name)) return nullptr;
  return make_int(env, mm::named_sem_unlink(name.c_str()));
}

// semPost(handle) -> 0 | -errno.
napi_value js_sem_post(napi_env env, napi_callback_info info) {
  napi_value rc = nullptr;
  Sem* s = open_sem(env, info, &rc);
  return s == nullptr ? rc : make_int(env, mm::named_sem_post(s->sem));
}

// semWait(handle, timeoutNs) -> 0 | -errno; timeoutNs < 0: no limit. Blocks this thread.
napi_value js_sem_wait(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Sem* s = nullptr;
  int64_t timeout = 0;
  if (!get_args(env, info, 2, argv) || !get_sem(env, argv[0], &s)) return nullptr;
  if (napi_get_value_int64(env, argv[1], &timeout) != napi_ok) return fail(env, "expected a timeout");
  if (s->closed) return make_int(env, -EBADF);
  return make_int(env, mm::named_sem_wait(s->sem, timeout));
}

// semTryWait(handle) -> 0 | -EAGAIN | -errno.
napi_value js_sem_try_wait(napi_env env, napi_callback_info info) {
  napi_value rc = nullptr;
  Sem* s = open_sem(env, info, &rc);
  return s == nullptr ? rc : make_int(env, mm::named_sem_trywait(s->sem));
}

// semValue(handle) -> value | -errno.
napi_value js_sem_value(napi_env env, napi_callback_info info) {
  napi_value rc = nullptr;
  Sem* s = open_sem(env, info, &rc);
  return s == nullptr ? rc : make_int(env, mm::named_sem_value(s->sem));
}

// semSize() -> sizeof(sem_t), the least a file under a semaphore's name must hold.
napi_value js_sem_size(napi_env env, napi_callback_info) { return make_int(env, mm::named_sem_size()); }

// semState(handle) -> ArrayBuffer over the semaphore's bytes, or null when their layout is
// not known here (see mm::named_sem_state_size) or the runtime refuses external buffers.
napi_value js_sem_state(napi_env env, napi_callback_info info) {
  napi_value rc = nullptr, result = nullptr;
  Sem* s = open_sem(env, info, &rc);
  if (s == nullptr) return rc;
  napi_get_null(env, &result);
  int size = mm::named_sem_state_size();
  if (size == 0 || s->view != nullptr) return result;
  napi_value view = nullptr;
  if (napi_create_external_arraybuffer(env, s->sem, static_cast<size_t>(size), finalize_view, s,
                                        &view) !=
      napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored = nullptr;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    return result;
  }
  s->refs++;
  napi_create_reference(env, view, 0, &s->view);
  return view;
}

}  // namespace memmap
