// The fault guard on a platform without SIGBUS and SIGSEGV handling in memmap yet: nothing is registered
// and no fault is absorbed.
#include <errno.h>

#include "guard.h"

namespace mm {

namespace {
GuardEpoch g_epoch = {0, 0};
}  // namespace

int guard_install() { return -ENOSYS; }
int guard_register(void*, size_t, const GuardRange&) { return -ENOSYS; }
void guard_move(int, void*, size_t) {}
void guard_restricted(int) {}
void guard_unregister(int) {}
uint32_t guard_faults(int) { return 0; }
uint64_t guard_absorbed_total() { return 0; }
uint32_t guard_violations(int) { return 0; }
uint64_t guard_violations_total() { return 0; }
GuardEpoch* guard_epoch() { return &g_epoch; }
bool guard_first_fault(int, GuardFault*) { return false; }
void guard_set_notify(void (*)()) {}

}  // namespace mm
