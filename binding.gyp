{
  "target_defaults": {
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "cflags": ["-O2"],
    "defines": ["_FILE_OFFSET_BITS=64"],
  },
  "targets": [
    {
      "target_name": "memmap",
      # Node-API version 8 (Node 12.22+, Bun, Deno): nothing newer is linked.
      "defines": ["NAPI_VERSION=8"],
      "sources": [
        "native/napi/addon.cc",
        "native/napi/glue.cc",
        "native/napi/mapping.cc",
        "native/napi/region.cc",
        "native/os/bytesum.cc",
      ],
      "conditions": [
        ["OS == 'linux'", {"sources": ["native/os/map_linux.cc"], "libraries": ["-ldl"]}],
        ["OS != 'linux'", {"sources": ["native/os/map_stub.cc"]}],
      ],
    },
    {
      # The V8-API helper for SharedArrayBuffers on Node 20 and 22 (native/v8/sab.cc). Its
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
