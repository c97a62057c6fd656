/* pingpong MODE ROUNDS SPIN_US: the C floor of case 6.
 *
 * MODE futex, spin-futex, spin: two processes (fork) over a shared anonymous page pass a
 * counter back and forth through two words, ROUNDS round trips. "futex" sleeps in FUTEX_WAIT
 * and always calls FUTEX_WAKE (the classic shape); "spin-futex" spins up to SPIN_US
 * microseconds on the word before sleeping; "spin" never sleeps. Prints
 * {"p50_ns":..,"p99_ns":..} over the round trips after a tenth spent warming up.
 *
 * MODE lock: uncontended lock + unlock, ROUNDS times, of a process-shared robust pthread mutex
 * and of a compare-and-swap futex lock (the fast path of every futex mutex). Prints
 * {"pthread_robust_ns":..,"futex_cas_ns":..}. */
#include "common.h"
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void wait_word(int *word, int seen) {
  syscall(SYS_futex, word, FUTEX_WAIT, seen, NULL, NULL, 0);
}
static void wake_word(int *word) { syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0); }

/* Waits until *word == want; the value it sleeps on is the one it read. */
static void await_value(int *word, int want, int mode, double spin_ns) {
  if (mode != 0) {
    double end = mode == 2 ? 1e300 : now_ns() + spin_ns;
    while (__atomic_load_n(word, __ATOMIC_ACQUIRE) != want) {
      if (now_ns() > end) break;
      __builtin_ia32_pause();
    }
  }
  for (;;) {
    int seen = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    if (seen == want) return;
    wait_word(word, seen);
  }
}

static void publish(int *word, int value, int mode) {
  __atomic_store_n(word, value, __ATOMIC_RELEASE);
  if (mode != 2) wake_word(word);
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int lock_mode(long rounds) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_t *mutex = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  pthread_mutex_init(mutex, &attr);
  double start = now_ns();
  for (long i = 0; i < rounds; i++) {
    pthread_mutex_lock(mutex);
    pthread_mutex_unlock(mutex);
  }
  double robust = (now_ns() - start) / rounds;
  int *word = (int *)(mutex + 1);
  start = now_ns();
  for (long i = 0; i < rounds; i++) {
    int zero = 0;
    if (!__atomic_compare_exchange_n(word, &zero, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 1;
    if (__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) == 2) wake_word(word);
  }
  double cas = (now_ns() - start) / rounds;
  printf("{\"pthread_robust_ns\":%.2f,\"futex_cas_ns\":%.2f}\n", robust, cas);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  long rounds = atol(argv[2]);
  double spin_ns = atof(argv[3]) * 1000;
  if (strcmp(argv[1], "lock") == 0) return lock_mode(rounds);
  int mode = strcmp(argv[1], "futex") == 0 ? 0 : strcmp(argv[1], "spin-futex") == 0 ? 1 : 2;
  int *words = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (words == MAP_FAILED) return 1;
  int *ping = &words[0], *pong = &words[16]; /* on separate cache lines */
  pid_t child = fork();
  if (child == 0) {
    for (int i = 1; i <= rounds; i++) {
      await_value(ping, i, mode, spin_ns);
      publish(pong, i, mode);
    }
    _exit(0);
  }
  double *samples = malloc(sizeof(double) * rounds);
  for (int i = 1; i <= rounds; i++) {
    double start = now_ns();
    publish(ping, i, mode);
    await_value(pong, i, mode, spin_ns);
    samples[i - 1] = now_ns() - start;
  }
  waitpid(child, NULL, 0);
  long warm = rounds / 10, n = rounds - warm;
  qsort(samples + warm, n, sizeof(double), compare);
  printf("{\"p50_ns\":%.0f,\"p99_ns\":%.0f}\n", samples[warm + n / 2], samples[warm + n * 99 / 100]);
  return 0;
}
