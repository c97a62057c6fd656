// The Linux implementation of the surface in mm.h. Each function is one system call (or a
// short fixed sequence of them) and returns 0 (or a descriptor) or -errno; see open(2),
// fstat(2), ftruncate(2), mmap(2), munmap(2), msync(2), madvise(2), mlock(2), mincore(2),
// posix_fadvise(2), readahead(2), fsync(2), fcntl(2), getrlimit(2).
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "mm.h"

namespace mm {

namespace {

inline int errno_result() { return -errno; }

// Advice and flags newer than some C library headers; the values are the kernel's ABI.
constexpr int kMadvCold = 20;
constexpr int kMadvPageOut = 21;
constexpr int kMadvPopulateRead = 22;
constexpr int kMadvPopulateWrite = 23;
constexpr int kMlockOnFault = 1;
// The huge page size encoded in mmap's flags (log2 of the size, shifted by MAP_HUGE_SHIFT).
constexpr int kMapHuge2MB = 21 << 26;
constexpr int kMapHuge1GB = 30 << 26;

int protection_of(Access access) {
  return access == Access::kRead ? PROT_READ : PROT_READ | PROT_WRITE;
}

}  // namespace

size_t page_size() {
  // sysconf is cheap but not free; the value cannot change while the process runs.
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

int open_file(const char* path, bool write, bool create) {
  int flags = (write ? O_RDWR : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd;
  // open may be interrupted by a signal while it waits on a slow file system; it has no
  // partial effect, so retrying is safe.
  do {
    fd = open(path, flags, 0666);
  } while (fd < 0 && errno == EINTR);
  return fd < 0 ? errno_result() : fd;
}

int open_shared(const char* name, bool write, bool create, bool exclusive, int mode) {
  // shm_open sets O_CLOEXEC itself (shm_open(3)); glibc and musl add O_NOFOLLOW too, which is
  // asked for here all the same, so that another user's symbolic link under the name is never
  // followed whatever the C library. O_NONBLOCK: a FIFO planted under the name must not block
  // the open (it has no effect on a regular file).
  int flags = (write ? O_RDWR : O_RDONLY) | (create ? O_CREAT : 0) | (exclusive ? O_EXCL : 0) |
              O_NOFOLLOW | O_NONBLOCK;
  int fd = shm_open(name, flags, static_cast<mode_t>(mode));
  return fd < 0 ? errno_result() : fd;
}

int open_path(const char* path) {
  int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  return fd < 0 ? errno_result() : fd;
}

int change_mode(int fd, int mode) {
  if (fchmod(fd, static_cast<mode_t>(mode)) == 0) return 0;
  if (errno != EBADF) return errno_result();
  // A descriptor opened with O_PATH refuses fchmod (EBADF); its /proc/self/fd entry names the
  // same inode, whatever happened to the name since.
  char proc[32];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  return chmod(proc, static_cast<mode_t>(mode)) == 0 ? 0 : errno_result();
}

int unlink_shared(const char* name) { return shm_unlink(name) == 0 ? 0 : errno_result(); }

int create_memory_file(const char* debug_name) {
  int fd = memfd_create(debug_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  return fd < 0 ? errno_result() : fd;
}

int add_seals(int fd, int seals) {
  int value = (seals & kSealSeal ? F_SEAL_SEAL : 0) | (seals & kSealShrink ? F_SEAL_SHRINK : 0) |
              (seals & kSealGrow ? F_SEAL_GROW : 0) | (seals & kSealWrite ? F_SEAL_WRITE : 0);
  return fcntl(fd, F_ADD_SEALS, value) == 0 ? 0 : errno_result();
}

int get_seals(int fd) {
  int value = fcntl(fd, F_GET_SEALS);
  if (value < 0) return errno_result();
  return (value & F_SEAL_SEAL ? kSealSeal : 0) | (value & F_SEAL_SHRINK ? kSealShrink : 0) |
         (value & F_SEAL_GROW ? kSealGrow : 0) | (value & F_SEAL_WRITE ? kSealWrite : 0);
}

int file_info(int fd, FileInfo* out) {
  struct stat st;
  if (fstat(fd, &st) != 0) return errno_result();
  out->kind = S_ISREG(st.st_mode)   ? FileKind::kRegular
              : S_ISDIR(st.st_mode) ? FileKind::kDirectory
              : S_ISLNK(st.st_mode) ? FileKind::kSymlink
                                    : FileKind::kOther;
  out->size = static_cast<uint64_t>(st.st_size);
  out->mode = static_cast<uint32_t>(st.st_mode & 07777);
  out->uid = static_cast<uint32_t>(st.st_uid);
  out->gid = static_cast<uint32_t>(st.st_gid);
  out->device = static_cast<uint64_t>(st.st_dev);
  out->inode = static_cast<uint64_t>(st.st_ino);
  return 0;
}

int resize_file(int fd, uint64_t size) {
  int rc;
  do {
    rc = ftruncate(fd, static_cast<off_t>(size));
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno_result();
}

int reserve_file(int fd, uint64_t size, uint64_t new_size) {
  if (new_size <= size) return 0;
  int rc;
  // fallocate(2) rather than posix_fallocate(3): where the file system lacks it, glibc's
  // posix_fallocate writes a byte into every block, slow for large files and racing writers
  // of the same file; musl has no such fallback at all. EINTR: what was allocated stays.
  do {
    rc = fallocate(fd, 0, static_cast<off_t>(size), static_cast<off_t>(new_size - size));
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return 0;
  // ENOSYS: a kernel or a seccomp filter without fallocate; both mean "cannot reserve".
  return errno == ENOSYS ? -EOPNOTSUPP : errno_result();
}

// The mmap flags every mapping shares: placement, reservation, population.
int common_flags(int flags, uintptr_t hint) {
  return (flags & kPopulate ? MAP_POPULATE : 0) | (flags & kNoReserve ? MAP_NORESERVE : 0) |
         (hint != 0 ? MAP_FIXED_NOREPLACE : 0);
}

// Checks that a placed mapping landed where it was asked to: kernels before 4.17 take
// MAP_FIXED_NOREPLACE as a mere hint and map elsewhere when the range is taken.
int placed(void* addr, size_t length, uintptr_t hint, void** out) {
  if (addr == MAP_FAILED) return errno_result();
  if (hint != 0 && reinterpret_cast<uintptr_t>(addr) != hint) {
    munmap(addr, length);
    return -EEXIST;
  }
  *out = addr;
  return 0;
}

int map_file(int fd, uint64_t offset, size_t length, Access access, int flags, uintptr_t hint,
             void** out) {
  // A private mapping is what makes 'copy' copy-on-write: writes land in anonymous pages of
  // this process and the file never sees them, even if it was opened read-write.
  int kind = access == Access::kCopy ? MAP_PRIVATE : MAP_SHARED;
  // MAP_SHARED_VALIDATE makes the kernel refuse MAP_SYNC where it cannot honour it
  // (EOPNOTSUPP) instead of ignoring it.
  if (flags & kSync) kind = MAP_SHARED_VALIDATE | MAP_SYNC;
  kind |= common_flags(flags, hint);
  void* addr = mmap(reinterpret_cast<void*>(hint), length, protection_of(access), kind, fd,
                    static_cast<off_t>(offset));
  return placed(addr, length, hint, out);
}

int map_anonymous(size_t length, bool shared, int flags, uintptr_t hint, void** out) {
  int kind = MAP_ANONYMOUS | (shared ? MAP_SHARED : MAP_PRIVATE) | common_flags(flags, hint);
  if (flags & (kHugePages2M | kHugePages1G)) {
    kind |= MAP_HUGETLB | (flags & kHugePages1G ? kMapHuge1GB : kMapHuge2MB);
  }
  const size_t huge = size_t{2} << 20;
  if ((flags & kAlignHuge) && hint == 0 && !(kind & MAP_HUGETLB)) {
    // Map 2 MiB more than asked and trim both ends, so the range starts on a 2 MiB boundary
    // where transparent huge pages can back it.
    void* wide = mmap(nullptr, length + huge, PROT_READ | PROT_WRITE, kind & ~MAP_POPULATE, -1, 0);
    if (wide == MAP_FAILED) return errno_result();
    uintptr_t start = reinterpret_cast<uintptr_t>(wide);
    uintptr_t aligned = (start + huge - 1) & ~(huge - 1);
    if (aligned > start) munmap(wide, aligned - start);
    uintptr_t tail = aligned + length, end = start + length + huge;
    if (end > tail) munmap(reinterpret_cast<void*>(tail), end - tail);
    *out = reinterpret_cast<void*>(aligned);
    return 0;
  }
  void* addr = mmap(reinterpret_cast<void*>(hint), length, PROT_READ | PROT_WRITE, kind, -1, 0);
  return placed(addr, length, hint, out);
}

size_t mapping_granule(int fd) {
  // hugetlbfs maps and faults in whole huge pages, its block size (statfs(2)).
  constexpr long kHugetlbfsMagic = 0x958458f6;
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0 || static_cast<long>(fs.f_type) != kHugetlbfsMagic) return 0;
  return static_cast<size_t>(fs.f_bsize);
}

int unmap(void* addr, size_t length) { return munmap(addr, length) == 0 ? 0 : errno_result(); }

int replace_with_zero_pages(void* addr, size_t length) {
  // MAP_FIXED atomically replaces whatever is mapped at [addr, addr + length). That is only
  // safe because the caller passes a range that memmap itself mapped and still owns: nothing
  // else can live there. The new pages are writable so that a stale view written to after
  // close() lands in throwaway memory instead of faulting. MAP_NORESERVE: writable private
  // memory is otherwise charged in full against the commit limit, and many large stand-ins
  // would make fork() (and so child_process.spawn) fail with ENOMEM; pages are only
  // allocated if a stale view writes to them.
  void* got = mmap(addr, length, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return got == MAP_FAILED ? errno_result() : 0;
}

int64_t count_mappings() {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_result();
  char chunk[16384];
  int64_t lines = 0;
  for (;;) {
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int rc = errno_result();
      close(fd);
      return rc;
    }
    if (got == 0) break;
    for (ssize_t i = 0; i < got; i++) lines += chunk[i] == '\n';
  }
  close(fd);
  return lines;
}

int flush(void* addr, size_t length, int how) {
  int flags = (how & kFlushAsync ? MS_ASYNC : MS_SYNC) | (how & kFlushInvalidate ? MS_INVALIDATE : 0);
  return msync(addr, length, flags) == 0 ? 0 : errno_result();
}

int advise(void* addr, size_t length, Advice advice) {
  int value = MADV_NORMAL;
  switch (advice) {
    case Advice::kNormal: value = MADV_NORMAL; break;
    case Advice::kRandom: value = MADV_RANDOM; break;
    case Advice::kSequential: value = MADV_SEQUENTIAL; break;
    case Advice::kWillNeed: value = MADV_WILLNEED; break;
    case Advice::kDontNeed: value = MADV_DONTNEED; break;
    case Advice::kFree: value = MADV_FREE; break;
    case Advice::kRemove: value = MADV_REMOVE; break;
    case Advice::kHugePage: value = MADV_HUGEPAGE; break;
    case Advice::kNoHugePage: value = MADV_NOHUGEPAGE; break;
    case Advice::kDontFork: value = MADV_DONTFORK; break;
    case Advice::kDoFork: value = MADV_DOFORK; break;
    case Advice::kPopulateRead: value = kMadvPopulateRead; break;
    case Advice::kPopulateWrite: value = kMadvPopulateWrite; break;
    case Advice::kCold: value = kMadvCold; break;
    case Advice::kPageOut: value = kMadvPageOut; break;
    default: return -EINVAL;
  }
  int rc;
  // MADV_POPULATE_* can be interrupted by a signal part-way; what it did stays done.
  do {
    rc = madvise(addr, length, value);
  } while (rc != 0 && errno == EINTR);
  return rc == 0 ? 0 : errno_result();
}

int resize_mapping(void* addr, size_t length, size_t new_length, void** out) {
  void* moved = mremap(addr, length, new_length, MREMAP_MAYMOVE);
  if (moved == MAP_FAILED) return errno_result();
  *out = moved;
  return 0;
}

int protect_range(void* addr, size_t length, Protection protection) {
  int prot = protection == Protection::kNone   ? PROT_NONE
             : protection == Protection::kRead ? PROT_READ
                                               : PROT_READ | PROT_WRITE;
  return mprotect(addr, length, prot) == 0 ? 0 : errno_result();
}

// Straight to the kernel: sanitizer runtimes replace mlock and munlock with calls that do
// nothing, and locking must mean the same in every build.
int bind_range(void* addr, size_t length, NumaPolicy policy, uint64_t nodes, bool move) {
  // The mbind(2) system call, without libnuma: MPOL_* are the kernel's numbers, and the node
  // mask is one unsigned long of nodes 0 to 63.
  constexpr unsigned kMpolMfMove = 1 << 1;
  unsigned long mask = static_cast<unsigned long>(nodes);
  long rc = syscall(SYS_mbind, addr, length, static_cast<int>(policy), policy == NumaPolicy::kDefault ? nullptr : &mask,
                    policy == NumaPolicy::kDefault ? 0UL : 64UL, move ? kMpolMfMove : 0U);
  return rc == 0 ? 0 : errno_result();
}

int lock_range(void* addr, size_t length, bool on_fault) {
  long rc = on_fault ? syscall(SYS_mlock2, addr, length, kMlockOnFault) : syscall(SYS_mlock, addr, length);
  return rc == 0 ? 0 : errno_result();
}

int unlock_range(void* addr, size_t length) {
  return syscall(SYS_munlock, addr, length) == 0 ? 0 : errno_result();
}

int resident_pages(void* addr, size_t length, uint8_t* out) {
  if (mincore(addr, length, out) != 0) return errno_result();
  // Only the lowest bit has a meaning; the others are reserved.
  size_t pages = (length + page_size() - 1) / page_size();
  for (size_t i = 0; i < pages; i++) out[i] &= 1;
  return 0;
}

int file_resident_pages(int fd, uint64_t offset, uint64_t length, uint8_t* out) {
  // In windows, so that a huge file never needs its whole size in address space at once.
  const uint64_t window = uint64_t{1} << 30;
  for (uint64_t done = 0; done < length; done += window) {
    size_t size = static_cast<size_t>(length - done < window ? length - done : window);
    void* addr = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset + done));
    if (addr == MAP_FAILED) return errno_result();
    int rc = resident_pages(addr, size, out + done / page_size());
    munmap(addr, size);
    if (rc < 0) return rc;
  }
  return 0;
}

int prefetch_file(int fd, uint64_t offset, uint64_t length) {
  int rc = posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_WILLNEED);
  if (rc != 0) return -rc;  // posix_fadvise returns the error number
  return readahead(fd, static_cast<off64_t>(offset), static_cast<size_t>(length)) == 0 ? 0 : errno_result();
}

int evict_file(int fd, uint64_t offset, uint64_t length) {
  int rc;
  do {
    rc = fdatasync(fd);
  } while (rc != 0 && errno == EINTR);
  // A read-only descriptor cannot be synced on some file systems; there is nothing dirty to
  // write through it anyway.
  if (rc != 0 && errno != EBADF && errno != EINVAL) return errno_result();
  rc = posix_fadvise(fd, static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_DONTNEED);
  return rc == 0 ? 0 : -rc;
}

int memlock_limit(uint64_t* soft, uint64_t* hard) {
  rlimit limit;
  if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return errno_result();
  *soft = limit.rlim_cur == RLIM_INFINITY ? kUnlimited : limit.rlim_cur;
  *hard = limit.rlim_max == RLIM_INFINITY ? kUnlimited : limit.rlim_max;
  return 0;
}

int sync_file(int fd) { return fsync(fd) == 0 ? 0 : errno_result(); }

int duplicate_fd(int fd) {
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return copy < 0 ? errno_result() : copy;
}

int close_fd(int fd) {
  // Linux releases the descriptor even when close is interrupted, so retrying on EINTR could
  // close a descriptor another thread has just been given (close(2), "Dealing with error
  // returns").
  return close(fd) == 0 || errno == EINTR ? 0 : errno_result();
}

}  // namespace mm
