/* channel_ring MODE N SIZE SPIN_US: the C floor of the channel case.
 *
 * A single-producer, single-consumer ring of framed records in shared memory (fork), with the
 * channel's record header (i32 length as the commit marker, i32 type, 8-byte alignment,
 * padding at the end) and its sleeping protocol (a flag, re-check, FUTEX_WAIT; the writer reads
 * the flag after each commit and wakes only a sleeper).
 *
 * MODE throughput: the parent sends N records of SIZE bytes, the child reads them; prints
 * {"messages_per_s":..}. MODE pingpong: N round trips of one SIZE-byte record through two
 * rings, each side spinning SPIN_US microseconds before sleeping; prints {"p50_ns":..,"p99_ns":..}. */
#include "common.h"
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAPACITY (1u << 20)
#define PAD (-1)

struct ring {
  _Alignas(128) uint64_t tail;
  _Alignas(128) uint64_t head;
  _Alignas(128) int32_t data_signal;
  int32_t consumer_sleeping;
  _Alignas(128) int32_t space_signal;
  int32_t producer_sleeping;
  _Alignas(4096) uint8_t data[CAPACITY];
};

static void fwait(int32_t *w, int v) { syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0); }
static void fwake(int32_t *w) { syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0); }

static int try_send(struct ring *r, const uint8_t *msg, uint32_t size) {
  uint32_t required = (size + 8 + 7) & ~7u;
  uint64_t tail = r->tail;
  uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
  uint32_t index = (uint32_t)(tail & (CAPACITY - 1));
  uint32_t to_end = CAPACITY - index;
  uint32_t padding = required > to_end ? to_end : 0;
  if (tail + padding + required - head > CAPACITY) return 0;
  if (padding) {
    __atomic_store_n((int32_t *)(r->data + index + 4), PAD, __ATOMIC_RELAXED);
    __atomic_store_n((int32_t *)(r->data + index), (int32_t)padding, __ATOMIC_RELEASE);
    index = 0;
  }
  memcpy(r->data + index + 8, msg, size);
  *(int32_t *)(r->data + index + 4) = 1;
  __atomic_store_n((int32_t *)(r->data + index), (int32_t)(size + 8), __ATOMIC_RELEASE);
  __atomic_store_n(&r->tail, tail + padding + required, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&r->consumer_sleeping, __ATOMIC_SEQ_CST)) {
    __atomic_add_fetch(&r->data_signal, 1, __ATOMIC_SEQ_CST);
    fwake(&r->data_signal);
  }
  return 1;
}

/* Reads one record into out (if not NULL); returns its size, or -1 when empty. */
static int try_receive(struct ring *r, uint8_t *out) {
  for (;;) {
    uint64_t head = r->head;
    uint32_t index = (uint32_t)(head & (CAPACITY - 1));
    int32_t length = __atomic_load_n((int32_t *)(r->data + index), __ATOMIC_ACQUIRE);
    if (length <= 0) return -1;
    int32_t type = *(int32_t *)(r->data + index + 4);
    uint32_t stride = ((uint32_t)length + 7) & ~7u;
    int size = length - 8;
    if (type != PAD && out) memcpy(out, r->data + index + 8, (size_t)size);
    memset(r->data + index, 0, stride);
    __atomic_store_n(&r->head, head + stride, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->producer_sleeping, __ATOMIC_SEQ_CST)) {
      __atomic_add_fetch(&r->space_signal, 1, __ATOMIC_SEQ_CST);
      fwake(&r->space_signal);
    }
    if (type != PAD) return size;
  }
}

static int receive(struct ring *r, uint8_t *out, double spin_ns) {
  int n = try_receive(r, out);
  if (n >= 0) return n;
  double end = now_ns() + spin_ns;
  while (now_ns() < end) {
    if ((n = try_receive(r, out)) >= 0) return n;
    __builtin_ia32_pause();
  }
  for (;;) {
    __atomic_store_n(&r->consumer_sleeping, 1, __ATOMIC_SEQ_CST);
    int32_t seen = __atomic_load_n(&r->data_signal, __ATOMIC_SEQ_CST);
    if ((n = try_receive(r, out)) >= 0) break;
    fwait(&r->data_signal, seen);
  }
  __atomic_store_n(&r->consumer_sleeping, 0, __ATOMIC_SEQ_CST);
  return n;
}

static void send(struct ring *r, const uint8_t *msg, uint32_t size) {
  if (try_send(r, msg, size)) return;
  for (;;) {
    __atomic_store_n(&r->producer_sleeping, 1, __ATOMIC_SEQ_CST);
    int32_t seen = __atomic_load_n(&r->space_signal, __ATOMIC_SEQ_CST);
    if (try_send(r, msg, size)) break;
    fwait(&r->space_signal, seen);
  }
  __atomic_store_n(&r->producer_sleeping, 0, __ATOMIC_SEQ_CST);
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  long n = atol(argv[2]);
  uint32_t size = (uint32_t)atol(argv[3]);
  double spin_ns = atof(argv[4]) * 1000;
  struct ring *rings = mmap(NULL, 2 * sizeof(struct ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (rings == MAP_FAILED) return 1;
  uint8_t msg[65536] = {7};
  uint8_t in[65536];
  if (strcmp(argv[1], "throughput") == 0) {
    pid_t child = fork();
    if (child == 0) {
      for (long i = 0; i < n; i++) receive(&rings[0], in, spin_ns);
      _exit(0);
    }
    double t = now_ns();
    for (long i = 0; i < n; i++) send(&rings[0], msg, size);
    waitpid(child, NULL, 0);
    printf("{\"messages_per_s\":%.0f}\n", n / ((now_ns() - t) / 1e9));
    return 0;
  }
  pid_t child = fork();
  if (child == 0) {
    for (long i = 0; i < n; i++) {
      int got = receive(&rings[0], in, spin_ns);
      send(&rings[1], in, (uint32_t)got);
    }
    _exit(0);
  }
  double *samples = malloc(sizeof(double) * (size_t)n);
  for (long i = 0; i < n; i++) {
    double t = now_ns();
    send(&rings[0], msg, size);
    receive(&rings[1], in, spin_ns);
    samples[i] = now_ns() - t;
  }
  waitpid(child, NULL, 0);
  long skip = n / 10;
  qsort(samples + skip, (size_t)(n - skip), sizeof(double), compare);
  long kept = n - skip;
  printf("{\"p50_ns\":%.0f,\"p99_ns\":%.0f}\n", samples[skip + kept / 2], samples[skip + kept * 99 / 100]);
  return 0;
}
