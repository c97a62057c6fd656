/* random_write FILE COUNT: COUNT 8-byte stores at pseudo-random 8-aligned offsets through a
 * shared writable mapping, then one msync(MS_SYNC). Prints {"ns_per_op":..,"flush_ms":..}. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  int fd = open(argv[1], O_RDWR);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 1;
  long count = atol(argv[2]);
  unsigned char *p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return 1;
  uint64_t slots = (uint64_t)st.st_size / 8;
  uint32_t seed = 88675123u;
  double start = now_ns();
  for (long i = 0; i < count; i++) {
    double value = (double)i;
    memcpy(p + (xorshift32(&seed) % slots) * 8, &value, 8);
  }
  double stores = now_ns() - start;
  start = now_ns();
  msync(p, st.st_size, MS_SYNC);
  double flush = now_ns() - start;
  printf("{\"ns_per_op\":%.2f,\"flush_ms\":%.3f}\n", stores / count, flush / 1e6);
  return 0;
}
