// Waiting on words in shared memory on a platform memmap does not support yet.
#include <errno.h>

#include "futex.h"

namespace mm {

int word_wait(uint32_t*, uint32_t, int64_t) { return -ENOSYS; }
int word_wait_until(uint32_t*, uint32_t, int64_t) { return -ENOSYS; }
int word_wake(uint32_t*, int) { return -ENOSYS; }
int words_wait(uint32_t* const*, const uint32_t*, size_t, int64_t) { return -ENOSYS; }
int thread_id() { return -ENOSYS; }
int process_id() { return -ENOSYS; }
int64_t monotonic_ns() { return 0; }

}  // namespace mm
