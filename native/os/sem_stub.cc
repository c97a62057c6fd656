// Named semaphores on a platform memmap does not support yet.
#include <errno.h>

#include "sem.h"

namespace mm {

int named_sem_open(const char*, bool, bool, int, unsigned, void**) { return -ENOSYS; }
int named_sem_close(void*) { return -ENOSYS; }
int named_sem_unlink(const char*) { return -ENOSYS; }
int named_sem_post(void*) { return -ENOSYS; }
int named_sem_wait(void*, int64_t) { return -ENOSYS; }
int named_sem_trywait(void*) { return -ENOSYS; }
int named_sem_value(void*) { return -ENOSYS; }
int named_sem_size() { return 0; }
int named_sem_state_size() { return 0; }

}  // namespace mm
