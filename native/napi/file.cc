#include "file.h"

#include <string>

#include "../os/mm.h"
#include "glue.h"

namespace memmap {

// openFile(path, write, create) -> fd | -errno.
napi_value js_open_file(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  bool write = false, create = false;
  std::string path;
  if (!get_args(env, info, 3, argv) || !get_string(env, argv[0], &path) ||
      !get_bool(env, argv[1], &write) || !get_bool(env, argv[2], &create)) {
    return nullptr;
  }
  return make_int(env, mm::open_file(path.c_str(), write, create));
}

// openShared(name, write, create, exclusive, mode) -> fd | -errno.
napi_value js_open_shared(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  std::string name;
  bool write = false, create = false, exclusive = false;
  int32_t mode = 0;
  if (!get_args(env, info, 5, argv) || !get_string(env, argv[0], &name) ||
      !get_bool(env, argv[1], &write) || !get_bool(env, argv[2], &create) ||
      !get_bool(env, argv[3], &exclusive) || !get_int(env, argv[4], &mode)) {
    return nullptr;
  }
  return make_int(env, mm::open_shared(name.c_str(), write, create, exclusive, mode));
}

// openPath(path) -> fd | -errno: a handle for fileInfo and changeMode only (mm::open_path).
napi_value js_open_path(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  std::string path;
  if (!get_args(env, info, 1, argv) || !get_string(env, argv[0], &path)) return nullptr;
  return make_int(env, mm::open_path(path.c_str()));
}

// changeMode(fd, mode) -> 0 | -errno.
napi_value js_change_mode(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = 0, mode = 0;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &mode)) {
    return nullptr;
  }
  return make_int(env, mm::change_mode(fd, mode));
}

// unlinkShared(name) -> 0 | -errno.
napi_value js_unlink_shared(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  std::string name;
  if (!get_args(env, info, 1, argv) || !get_string(env, argv[0], &name)) return nullptr;
  return make_int(env, mm::unlink_shared(name.c_str()));
}

// createMemoryFile(debugName) -> fd | -errno.
napi_value js_create_memory_file(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  std::string name;
  if (!get_args(env, info, 1, argv) || !get_string(env, argv[0], &name)) return nullptr;
  return make_int(env, mm::create_memory_file(name.c_str()));
}

// addSeals(fd, seals) -> 0 | -errno; getSeals(fd) -> seals | -errno.
napi_value js_add_seals(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = 0, seals = 0;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &seals)) {
    return nullptr;
  }
  return make_int(env, mm::add_seals(fd, seals));
}

napi_value js_get_seals(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd = 0;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return nullptr;
  return make_int(env, mm::get_seals(fd));
}

// fileInfo(fd) -> [kind, size, mode, uid, gid, device, inode] | -errno; kind 0 regular,
// 1 directory, 2 other, 3 symbolic link; device and inode are bigints.
napi_value js_file_info(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd = 0;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return nullptr;
  mm::FileInfo file{};
  int rc = mm::file_info(fd, &file);
  if (rc < 0) return make_int(env, rc);
  napi_value result = nullptr, size = nullptr, device = nullptr, inode = nullptr;
  // Sizes above 2^53 cannot be exact in a double; no file system produces them in practice.
  if (napi_create_array_with_length(env, 7, &result) != napi_ok ||
      napi_create_double(env, static_cast<double>(file.size), &size) != napi_ok ||
      napi_create_bigint_uint64(env, file.device, &device) != napi_ok ||
      napi_create_bigint_uint64(env, file.inode, &inode) != napi_ok ||
      napi_set_element(env, result, 0, make_int(env, static_cast<int>(file.kind))) != napi_ok ||
      napi_set_element(env, result, 1, size) != napi_ok ||
      napi_set_element(env, result, 2, make_int(env, file.mode)) != napi_ok ||
      napi_set_element(env, result, 3, make_int(env, file.uid)) != napi_ok ||
      napi_set_element(env, result, 4, make_int(env, file.gid)) != napi_ok ||
      napi_set_element(env, result, 5, device) != napi_ok ||
      napi_set_element(env, result, 6, inode) != napi_ok) {
    return fail(env, "could not describe the file");
  }
  return result;
}

// resizeFile(fd, size) -> 0 | -errno.
napi_value js_resize_file(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd = 0;
  uint64_t size = 0;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], &fd) ||
      !get_size(env, argv[1], &size)) {
    return nullptr;
  }
  return make_int(env, mm::resize_file(fd, size));
}

// reserveFile(fd, size, newSize) -> 0 | -errno (-EOPNOTSUPP: the file system cannot).
napi_value js_reserve_file(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t fd = 0;
  uint64_t size = 0, new_size = 0;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], &fd) || !get_size(env, argv[1], &size) ||
      !get_size(env, argv[2], &new_size)) {
    return nullptr;
  }
  return make_int(env, mm::reserve_file(fd, size, new_size));
}

// closeFd(fd) -> 0 | -errno.
napi_value js_close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd = 0;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return nullptr;
  return make_int(env, mm::close_fd(fd));
}

// dupFd(fd) -> a close-on-exec duplicate | -errno.
napi_value js_dup_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd = 0;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], &fd)) return nullptr;
  return make_int(env, mm::duplicate_fd(fd));
}

}  // namespace memmap
