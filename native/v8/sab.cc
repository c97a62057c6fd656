// The SharedArrayBuffer helper for runtimes whose Node-API cannot wrap external memory in a
// SharedArrayBuffer (Node 20 and 22). It is the only file of memmap that uses the V8 API, and
// it is a separate addon loaded only on those versions, so the core addon stays pure Node-API
// and loads wherever Node-API does.
//
// It receives from the core addon (sharedViewParts in native/napi/mapping.cc) the address of
// a range the core keeps mapped, a deleter, and the deleter's argument, and makes a
// SharedArrayBuffer whose backing store calls that deleter when the last view, in any thread,
// is gone.
#include <node.h>
#include <v8.h>

#include <cstdint>

namespace memmap_v8 {

namespace {

using Deleter = void (*)(void* data, size_t length, void* deleter_data);

bool to_u64(v8::Local<v8::Value> value, uint64_t* out) {
  if (!value->IsBigInt()) return false;
  bool lossless = false;
  *out = value.As<v8::BigInt>()->Uint64Value(&lossless);
  return lossless;
}

// create(address: bigint, length: number, deleter: bigint, hint: bigint) -> SharedArrayBuffer
void create(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  uint64_t address = 0, deleter = 0, hint = 0;
  if (info.Length() < 4 || !to_u64(info[0], &address) || !info[1]->IsNumber() ||
      !to_u64(info[2], &deleter) || !to_u64(info[3], &hint)) {
    isolate->ThrowException(v8::Exception::TypeError(
        v8::String::NewFromUtf8Literal(isolate, "memmap V8 helper called with bad arguments")));
    return;
  }
  double length = info[1].As<v8::Number>()->Value();
  // SAFETY: address, deleter and hint come from sharedViewParts, which took a reference on
  // the region for exactly this backing store; the deleter gives it back.
  std::unique_ptr<v8::BackingStore> store = v8::SharedArrayBuffer::NewBackingStore(
      reinterpret_cast<void*>(static_cast<uintptr_t>(address)), static_cast<size_t>(length),
      reinterpret_cast<Deleter>(static_cast<uintptr_t>(deleter)),
      reinterpret_cast<void*>(static_cast<uintptr_t>(hint)));
  info.GetReturnValue().Set(v8::SharedArrayBuffer::New(isolate, std::move(store)));
}

// collect(): a full, synchronous garbage collection (what the isolate does when the system is
// low on memory). memmap asks for it when closed mappings whose SharedArrayBuffers are not yet
// collected hold much address space: their backing stores, once freed, release it.
void collect(const v8::FunctionCallbackInfo<v8::Value>& info) { info.GetIsolate()->LowMemoryNotification(); }

}  // namespace

}  // namespace memmap_v8

NODE_MODULE_INIT(/* exports, module, context */) {
  NODE_SET_METHOD(exports, "create", memmap_v8::create);
  NODE_SET_METHOD(exports, "collect", memmap_v8::collect);
}
