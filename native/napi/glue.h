// Helpers shared by the Node-API callbacks: reading arguments and reporting misuse.
//
// TypeScript validates every public argument before it reaches the addon, so a failure here
// means memmap's own code called the addon wrongly. Such a call throws a TypeError with code
// ERR_MEMMAP_INTERNAL instead of touching memory; a failed system call is not an exception
// but a negative errno returned to TypeScript, which makes the error users see
// (src/errors.ts).
#ifndef MEMMAP_NAPI_GLUE_H_
#define MEMMAP_NAPI_GLUE_H_

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "region.h"

namespace memmap {

// Throws the internal-misuse TypeError and returns nullptr, for `return fail(env, "...")`.
napi_value fail(napi_env env, const char* message);

// Reads `argc` arguments into argv; false (with an exception pending) if fewer were passed.
bool get_args(napi_env env, napi_callback_info info, size_t argc, napi_value* argv);

// A non-negative integer below 2^53, as TypeScript checked it.
bool get_size(napi_env env, napi_value value, uint64_t* out);
bool get_int(napi_env env, napi_value value, int32_t* out);
bool get_bool(napi_env env, napi_value value, bool* out);
bool get_string(napi_env env, napi_value value, std::string* out);

// The pointer inside an External that carries `tag`; false (with the internal-misuse error
// pending, naming `what`) for anything else, so a stray External is never dereferenced.
bool get_tagged(napi_env env, napi_value value, const napi_type_tag* tag, const char* what, void** out);

// The Region behind a handle made by map_file / map_anonymous.
bool get_region(napi_env env, napi_value value, Region** out);

// Marks a new handle external as a Region handle, for get_region.
bool tag_region_handle(napi_env env, napi_value handle);

// Checks that [start, start + length) lies inside the region.
bool in_bounds(const Region* r, uint64_t start, uint64_t length);

// Reads (handle, start, length) from argv[0..2] and checks the range; false with an exception
// pending if the arguments are wrong.
bool get_range(napi_env env, napi_value* argv, Region** r, uint64_t* start, uint64_t* length);

// The address of byte `start` of the region.
inline uint8_t* at(const Region* r, uint64_t start) { return static_cast<uint8_t*>(r->base) + start; }

napi_value make_int(napi_env env, int64_t value);
napi_value make_undefined(napi_env env);

}  // namespace memmap

#endif  // MEMMAP_NAPI_GLUE_H_
