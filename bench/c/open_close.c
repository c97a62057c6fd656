/* open_close FILE COUNT: COUNT times map the whole FILE, read one byte, unmap, with the file
 * opened once ("mmap+munmap") and with open, fstat and close each time as well ("full").
 * Prints {"mmap_munmap_ns":..,"full_ns":..}. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  long count = atol(argv[2]);
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 1;
  volatile unsigned sink = 0;
  double start = now_ns();
  for (long i = 0; i < count; i++) {
    unsigned char *p = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 1;
    sink += p[(i * 4096) % st.st_size];
    munmap(p, st.st_size);
  }
  double pair = (now_ns() - start) / count;
  close(fd);
  start = now_ns();
  for (long i = 0; i < count; i++) {
    int f = open(argv[1], O_RDONLY | O_CLOEXEC);
    struct stat s;
    fstat(f, &s);
    unsigned char *p = mmap(NULL, s.st_size, PROT_READ, MAP_SHARED, f, 0);
    if (p == MAP_FAILED) return 1;
    sink += p[(i * 4096) % s.st_size];
    munmap(p, s.st_size);
    close(f);
  }
  double full = (now_ns() - start) / count;
  printf("{\"mmap_munmap_ns\":%.1f,\"full_ns\":%.1f}\n", pair, full);
  return 0;
}
