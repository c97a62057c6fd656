/* random_read FILE COUNT MODE: COUNT page-aligned 4 KiB records at pseudo-random offsets of a
 * cached FILE, through a populated mapping. MODE read8 reads 8 bytes of each record; copy
 * copies each record out with memcpy. Prints {"ns_per_op":..,"check":..}. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 1;
  long count = atol(argv[2]);
  int copy = strcmp(argv[3], "copy") == 0;
  const unsigned char *p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) return 1;
  uint64_t pages = (uint64_t)st.st_size / 4096, check = 0;
  uint32_t seed = 2463534242u;
  static unsigned char out[4096];
  double start = now_ns();
  for (long i = 0; i < count; i++) {
    uint64_t offset = (xorshift32(&seed) % pages) * 4096;
    if (copy) {
      memcpy(out, p + offset, 4096);
      check += out[(unsigned)i & 4095];
    } else {
      double value;
      memcpy(&value, p + offset, 8);
      check += (uint64_t)value;
    }
  }
  double elapsed = now_ns() - start;
  printf("{\"ns_per_op\":%.2f,\"check\":%llu}\n", elapsed / count, (unsigned long long)check);
  return 0;
}
