/* checksum FILE: the classic program: map the whole file read-only with MAP_POPULATE and add
 * every byte into an unsigned 64-bit total. Prints {"seconds":..,"sum":..}; the time covers
 * open, map, sum and unmap. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  double start = now_ns();
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 1;
  size_t length = (size_t)st.st_size;
  const unsigned char *p = mmap(NULL, length, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) return 1;
  uint64_t sum = 0;
  for (size_t i = 0; i < length; i++) sum += p[i];
  munmap((void *)p, length);
  close(fd);
  printf("{\"seconds\":%.6f,\"sum\":%llu}\n", (now_ns() - start) / 1e9, (unsigned long long)sum);
  return 0;
}
