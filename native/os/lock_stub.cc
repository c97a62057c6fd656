// Robust lock words on a platform memmap does not support yet.
#include <errno.h>

#include "lock.h"

namespace mm {

int lock_try(uint32_t*, bool) { return -ENOSYS; }
int lock_wait(uint32_t*, int64_t) { return -ENOSYS; }
void lock_wait_end() {}
int lock_release(uint32_t*) { return -ENOSYS; }
bool lock_held(uint32_t*) { return false; }
int lock_usable() { return -ENOSYS; }
void lock_abandon_all() {}
void lock_abandon_range(const void*, size_t) {}
bool lock_held_in(const void*, size_t) { return false; }
void lock_test_stop(int) {}

}  // namespace mm
