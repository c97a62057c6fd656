// The surface of mm.h for a platform memmap does not support yet: every operation answers
// -ENOSYS, which TypeScript reports as ERR_MEMMAP_UNSUPPORTED.
#include <errno.h>

#include "mm.h"

namespace mm {

size_t page_size() { return 4096; }
int open_file(const char*, bool, bool) { return -ENOSYS; }
int open_shared(const char*, bool, bool, bool, int) { return -ENOSYS; }
int unlink_shared(const char*) { return -ENOSYS; }
int open_path(const char*) { return -ENOSYS; }
int change_mode(int, int) { return -ENOSYS; }
int create_memory_file(const char*) { return -ENOSYS; }
int add_seals(int, int) { return -ENOSYS; }
int get_seals(int) { return -ENOSYS; }
int file_info(int, FileInfo*) { return -ENOSYS; }
int resize_file(int, uint64_t) { return -ENOSYS; }
int reserve_file(int, uint64_t, uint64_t) { return -ENOSYS; }
int map_file(int, uint64_t, size_t, Access, int, uintptr_t, void**) { return -ENOSYS; }
int map_anonymous(size_t, bool, int, uintptr_t, void**) { return -ENOSYS; }
size_t mapping_granule(int) { return 0; }
int unmap(void*, size_t) { return -ENOSYS; }
int replace_with_zero_pages(void*, size_t) { return -ENOSYS; }
int64_t count_mappings() { return -ENOSYS; }
int flush(void*, size_t, int) { return -ENOSYS; }
int advise(void*, size_t, Advice) { return -ENOSYS; }
int resize_mapping(void*, size_t, size_t, void**) { return -ENOSYS; }
int protect_range(void*, size_t, Protection) { return -ENOSYS; }
int bind_range(void*, size_t, NumaPolicy, uint64_t, bool) { return -ENOSYS; }
int lock_range(void*, size_t, bool) { return -ENOSYS; }
int unlock_range(void*, size_t) { return -ENOSYS; }
int resident_pages(void*, size_t, uint8_t*) { return -ENOSYS; }
int file_resident_pages(int, uint64_t, uint64_t, uint8_t*) { return -ENOSYS; }
int prefetch_file(int, uint64_t, uint64_t) { return -ENOSYS; }
int evict_file(int, uint64_t, uint64_t) { return -ENOSYS; }
int memlock_limit(uint64_t*, uint64_t*) { return -ENOSYS; }
int sync_file(int) { return -ENOSYS; }
int duplicate_fd(int) { return -ENOSYS; }
int close_fd(int) { return -ENOSYS; }

}  // namespace mm
