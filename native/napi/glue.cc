#include "glue.h"

namespace memmap {

namespace {

// Tags handle externals so that an arbitrary External passed by mistake is refused rather
// than dereferenced.
const napi_type_tag kRegionTag = {0x6d656d6d61702d72ULL, 0x6567696f6e2d7631ULL};

}  // namespace

napi_value fail(napi_env env, const char* message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_type_error(env, "ERR_MEMMAP_INTERNAL", message);
  return nullptr;
}

bool get_args(napi_env env, napi_callback_info info, size_t argc, napi_value* argv) {
  size_t got = argc;
  if (napi_get_cb_info(env, info, &got, argv, nullptr, nullptr) != napi_ok || got < argc) {
    fail(env, "memmap addon called with too few arguments");
    return false;
  }
  return true;
}

bool get_size(napi_env env, napi_value value, uint64_t* out) {
  double number = 0;
  // 2^53: every integer below it is exact in a double, and TypeScript refuses larger ones.
  if (napi_get_value_double(env, value, &number) != napi_ok || !(number >= 0) ||
      number > 9007199254740991.0 || number != static_cast<double>(static_cast<uint64_t>(number))) {
    fail(env, "memmap addon expected a non-negative integer");
    return false;
  }
  *out = static_cast<uint64_t>(number);
  return true;
}

bool get_int(napi_env env, napi_value value, int32_t* out) {
  if (napi_get_value_int32(env, value, out) != napi_ok) {
    fail(env, "memmap addon expected an int32");
    return false;
  }
  return true;
}

bool get_bool(napi_env env, napi_value value, bool* out) {
  if (napi_get_value_bool(env, value, out) != napi_ok) {
    fail(env, "memmap addon expected a boolean");
    return false;
  }
  return true;
}

bool get_string(napi_env env, napi_value value, std::string* out) {
  size_t length = 0;
  if (napi_get_value_string_utf8(env, value, nullptr, 0, &length) != napi_ok) {
    fail(env, "memmap addon expected a string");
    return false;
  }
  out->assign(length, '\0');
  if (napi_get_value_string_utf8(env, value, out->data(), length + 1, &length) != napi_ok) {
    fail(env, "memmap addon could not read a string");
    return false;
  }
  return true;
}

bool get_tagged(napi_env env, napi_value value, const napi_type_tag* tag, const char* what, void** out) {
  bool tagged = false;
  void* data = nullptr;
  if (napi_check_object_type_tag(env, value, tag, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, value, &data) != napi_ok || data == nullptr) {
    std::string message = std::string("memmap addon expected ") + what;
    fail(env, message.c_str());
    return false;
  }
  *out = data;
  return true;
}

bool get_region(napi_env env, napi_value value, Region** out) {
  void* data = nullptr;
  if (!get_tagged(env, value, &kRegionTag, "a mapping handle", &data)) return false;
  *out = static_cast<Region*>(data);
  return true;
}

bool tag_region_handle(napi_env env, napi_value handle) {
  return napi_type_tag_object(env, handle, &kRegionTag) == napi_ok;
}

bool in_bounds(const Region* r, uint64_t start, uint64_t length) {
  return start <= r->size && length <= r->size - start;
}

bool get_range(napi_env env, napi_value* argv, Region** r, uint64_t* start, uint64_t* length) {
  if (!get_region(env, argv[0], r) || !get_size(env, argv[1], start) || !get_size(env, argv[2], length)) {
    return false;
  }
  if (!in_bounds(*r, *start, *length)) {
    fail(env, "range outside the mapping");
    return false;
  }
  return true;
}

napi_value make_int(napi_env env, int64_t value) {
  napi_value result = nullptr;
  napi_create_int64(env, value, &result);
  return result;
}

napi_value make_undefined(napi_env env) {
  napi_value result = nullptr;
  napi_get_undefined(env, &result);
  return result;
}

}  // namespace memmap
