#include "tuning.h"

#include <cerrno>
#include <cstdint>

#include "../os/guard.h"
#include "../os/mm.h"
#include "glue.h"

namespace memmap {

namespace {

// A Uint8Array of one byte per page of `length` bytes, filled by `fill(bytes)`; or -errno.
template <typename Fill>
napi_value page_map(napi_env env, uint64_t length, Fill fill) {
  size_t pages = static_cast<size_t>((length + mm::page_size() - 1) / mm::page_size());
  void* data = nullptr;
  napi_value buffer = nullptr, array = nullptr;
  if (napi_create_arraybuffer(env, pages, &data, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_uint8_array, pages, buffer, 0, &array) != napi_ok) {
    return fail(env, "could not allocate a residency map");
  }
  if (pages == 0) return array;
  int rc = fill(static_cast<uint8_t*>(data));
  return rc < 0 ? make_int(env, rc) : array;
}

// (fd, offset, length) for the file-level calls.
bool get_file_range(napi_env env, napi_callback_info info, int32_t* fd, uint64_t* offset, uint64_t* length) {
  napi_value argv[3];
  return get_args(env, info, 3, argv) && get_int(env, argv[0], fd) && get_size(env, argv[1], offset) &&
         get_size(env, argv[2], length);
}

}  // namespace

// lockRange(handle, start, length, onFault) -> 0 | -errno.
napi_value js_lock_range(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  bool on_fault = false;
  if (!get_args(env, info, 4, argv) || !get_range(env, argv, &r, &start, &length) ||
      !get_bool(env, argv[3], &on_fault)) {
    return nullptr;
  }
  if (r->closed.load()) return make_int(env, -EBADF);
  if (length == 0) return make_int(env, 0);
  region_note_split();
  return make_int(env, mm::lock_range(at(r, start), length, on_fault));
}

// protect(handle, start, length, protection) -> 0 | -errno.
napi_value js_protect(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  int32_t protection = 0;
  if (!get_args(env, info, 4, argv) || !get_range(env, argv, &r, &start, &length) ||
      !get_int(env, argv[3], &protection) || protection < 0 || protection > 2) {
    return fail(env, "bad protect arguments");
  }
  if (r->closed.load()) return make_int(env, -EBADF);
  if (length == 0) return make_int(env, 0);
  // Memory the guard maps into the range from now on must not be more writable than this.
  if (protection != static_cast<int32_t>(mm::Protection::kReadWrite) && r->guard_slot >= 0) {
    mm::guard_restricted(r->guard_slot);
  }
  region_note_split();
  return make_int(env, mm::protect_range(at(r, start), length, static_cast<mm::Protection>(protection)));
}

// bindRange(handle, start, length, policy, nodeMask, move) -> 0 | -errno.
napi_value js_bind_range(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  Region* r = nullptr;
  uint64_t start = 0, length = 0, nodes = 0;
  int32_t policy = 0;
  bool move = false;
  if (!get_args(env, info, 6, argv) || !get_range(env, argv, &r, &start, &length) ||
      !get_int(env, argv[3], &policy) || !get_size(env, argv[4], &nodes) || !get_bool(env, argv[5], &move) ||
      policy < 0 || policy > 3) {
    return fail(env, "bad bindRange arguments");
  }
  if (r->closed.load()) return make_int(env, -EBADF);
  if (length == 0) return make_int(env, 0);
  region_note_split();
  return make_int(env, mm::bind_range(at(r, start), length, static_cast<mm::NumaPolicy>(policy), nodes, move));
}

// unlockRange(handle, start, length) -> 0 | -errno.
napi_value js_unlock_range(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  if (!get_args(env, info, 3, argv) || !get_range(env, argv, &r, &start, &length)) return nullptr;
  if (r->closed.load()) return make_int(env, -EBADF);
  return make_int(env, length == 0 ? 0 : mm::unlock_range(at(r, start), length));
}

// residency(handle, start, length) -> Uint8Array (0/1 per page) | -errno.
napi_value js_residency(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  Region* r = nullptr;
  uint64_t start = 0, length = 0;
  if (!get_args(env, info, 3, argv) || !get_range(env, argv, &r, &start, &length)) return nullptr;
  if (r->closed.load()) return make_int(env, -EBADF);
  return page_map(env, length, [&](uint8_t* out) { return mm::resident_pages(at(r, start), length, out); });
}

// fileResidency(fd, offset, length) -> Uint8Array | -errno; offset is page-aligned.
napi_value js_file_residency(napi_env env, napi_callback_info info) {
  int32_t fd = -1;
  uint64_t offset = 0, length = 0;
  if (!get_file_range(env, info, &fd, &offset, &length)) return nullptr;
  return page_map(env, length, [&](uint8_t* out) { return mm::file_resident_pages(fd, offset, length, out); });
}

// prefetchFile(fd, offset, length) -> 0 | -errno.
napi_value js_prefetch_file(napi_env env, napi_callback_info info) {
  int32_t fd = -1;
  uint64_t offset = 0, length = 0;
  if (!get_file_range(env, info, &fd, &offset, &length)) return nullptr;
  return make_int(env, mm::prefetch_file(fd, offset, length));
}

// evictFile(fd, offset, length) -> 0 | -errno.
napi_value js_evict_file(napi_env env, napi_callback_info info) {
  int32_t fd = -1;
  uint64_t offset = 0, length = 0;
  if (!get_file_range(env, info, &fd, &offset, &length)) return nullptr;
  return make_int(env, mm::evict_file(fd, offset, length));
}

// memlockLimit() -> [soft, hard] in bytes (-1: unlimited) | -errno.
napi_value js_memlock_limit(napi_env env, napi_callback_info) {
  uint64_t soft = 0, hard = 0;
  int rc = mm::memlock_limit(&soft, &hard);
  if (rc < 0) return make_int(env, rc);
  napi_value result = nullptr;
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, make_int(env, soft == mm::kUnlimited ? -1 : static_cast<int64_t>(soft)));
  napi_set_element(env, result, 1, make_int(env, hard == mm::kUnlimited ? -1 : static_cast<int64_t>(hard)));
  return result;
}

// regionAddress(handle) -> bigint: where the region starts in this process's address space,
// to find it in /proc/self/smaps.
napi_value js_region_address(napi_env env, napi_callback_info info) {
  napi_value argv[1], result = nullptr;
  Region* r = nullptr;
  if (!get_args(env, info, 1, argv) || !get_region(env, argv[0], &r)) return nullptr;
  napi_create_bigint_uint64(env, reinterpret_cast<uintptr_t>(r->base), &result);
  return result;
}

}  // namespace memmap
