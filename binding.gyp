{
  "targets": [
    {
      # The core addon: pure Node-API (version 8), so one binary loads in Node, Bun and Deno.
      "target_name": "memmap",
      "defines": ["NAPI_VERSION=8", "_FILE_OFFSET_BITS=64"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "sources": [
        "native/napi/addon.cc",
        "native/napi/file.cc",
        "native/napi/glue.cc",
        "native/napi/lock.cc",
        "native/napi/mapping.cc",
        "native/napi/region.cc",
        "native/napi/semaphore.cc",
        "native/napi/tuning.cc",
        "native/napi/waiter.cc",
        "native/os/bytesum.cc",
      ],
      "conditions": [
        ["OS == 'linux'", {
          "sources": ["native/os/map_linux.cc", "native/os/guard_linux.cc", "native/os/futex_linux.cc",
                      "native/os/sem_linux.cc", "native/os/lock_linux.cc"],
          "libraries": ["-ldl", "-lpthread"],
        }],
        ["OS != 'linux'", {
          "sources": ["native/os/map_stub.cc", "native/os/guard_stub.cc", "native/os/futex_stub.cc",
                      "native/os/sem_stub.cc", "native/os/lock_stub.cc"],
        }],
      ],
    },
    {
      # The V8-API helper for SharedArrayBuffers on Node 20 and 22 (native/v8/sab.cc). It keeps
      # the C++ standard of the Node headers it is built against (C++20 from Node 23 on). Its
      # file does not end in .node, so that node-gyp-build, which loads the first .node file of
      # build/Release, always finds the core addon; src/native.ts loads it with process.dlopen.
      "target_name": "memmap_sab",
      "target_conditions": [["_type == 'loadable_module'", {"product_extension": "v8addon"}]],
      "sources": ["native/v8/sab.cc"],
      # NODE_MODULE_INIT casts its init function to Node's registration type.
      "cflags_cc": ["-Wno-cast-function-type"],
    },
  ],
}
