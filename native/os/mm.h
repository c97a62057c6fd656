// The operating-system surface of memmap.
//
// Everything in native/os/ speaks to the kernel and nothing else: no Node headers, no
// exceptions, no allocation that can throw. Every function that can fail returns 0 (or a
// non-negative result) on success and -errno on failure, so the Node-API layer above can hand
// the number to TypeScript, which turns it into an error in one place (src/errors.ts).
//
// Operations are named by what they do, not by the Linux call that does it, so that a Windows
// or macOS file beside map_linux.cc can provide the same surface. A platform that lacks an
// operation answers -ENOSYS (map_stub.cc answers it for every operation).
#ifndef MEMMAP_OS_MM_H_
#define MEMMAP_OS_MM_H_

#include <cstddef>
#include <cstdint>

namespace mm {

// How the pages of a mapping relate to its file.
enum class Access : int {
  kRead = 0,   // readable; sees every change made to the file
  kWrite = 1,  // readable and writable; writes reach the file and every other mapping of it
  kCopy = 2,   // readable and writable; writes stay private to this mapping (copy-on-write)
};

// Extra behaviour asked of map_file / map_anonymous, as bit flags.
enum MapFlags : int {
  kPopulate = 1 << 0,  // fault every page in before returning (MAP_POPULATE)
  kNoReserve = 1 << 1,  // charge nothing against the commit limit up front (MAP_NORESERVE)
  kHugePages2M = 1 << 2,  // back it with reserved 2 MiB huge pages (MAP_HUGETLB)
  kHugePages1G = 1 << 3,  // back it with reserved 1 GiB huge pages (MAP_HUGETLB)
  kSync = 1 << 4,  // synchronous page faults on a DAX file (MAP_SHARED_VALIDATE | MAP_SYNC)
  kAlignHuge = 1 << 5,  // start at a 2 MiB boundary, so transparent huge pages can back it
};

// Advice about a mapped range (the madvise advice values, renumbered so the surface does not
// depend on <sys/mman.h>).
enum class Advice : int {
  kNormal = 0,
  kRandom = 1,
  kSequential = 2,
  kWillNeed = 3,
  kDontNeed = 4,
  kFree = 5,
  kRemove = 6,
  kHugePage = 7,
  kNoHugePage = 8,
  kDontFork = 9,
  kDoFork = 10,
  kPopulateRead = 11,
  kPopulateWrite = 12,
  kCold = 13,
  kPageOut = 14,
};

// What kind of file an open descriptor refers to; only regular files can be mapped.
enum class FileKind : int { kRegular = 0, kDirectory = 1, kOther = 2, kSymlink = 3 };

struct FileInfo {
  FileKind kind;
  uint64_t size;
  uint32_t mode;  // permission bits
  uint32_t uid;  // owner
  uint32_t gid;  // group
  uint64_t device;  // with inode, what tells one file from another
  uint64_t inode;
};

// The granularity of mapping offsets and protections on this system.
size_t page_size();

// Opens a file for mapping: read-only, or read-write when `write`; `create` makes it if it is
// missing (mode 0666 less the umask). The descriptor is close-on-exec and never blocks on
// open (a FIFO with no writer would otherwise wait forever). Returns the fd or -errno.
int open_file(const char* path, bool write, bool create);

// Opens a named shared memory object (shm_open: a file under /dev/shm on Linux, the same
// object a C program opening the same name sees). `create` makes it if missing, `exclusive`
// fails with EEXIST if it exists, `write` opens it read-write. A symbolic link planted under
// the name is never followed (-ELOOP), and a FIFO never blocks the open. Returns the fd or
// -errno.
int open_shared(const char* name, bool write, bool create, bool exclusive, int mode);

// Opens `path` as a handle for file_info and change_mode only (O_PATH | O_NOFOLLOW): the file
// itself is not opened, so this needs no permission on it and never blocks, and a symbolic
// link in the last component is the link itself (FileKind::kSymlink), never its target.
// Returns the fd or -errno.
int open_path(const char* path);

// Sets the permission bits of an open file to exactly `mode`, whatever the umask was when it
// was created (fchmod; for a descriptor from open_path, through /proc/self/fd as glibc's
// fchmodat does). Only the file's owner (or root) may.
int change_mode(int fd, int mode);

// Removes a named shared memory object; mappings of it live on until unmapped.
int unlink_shared(const char* name);

// Creates an anonymous memory file (memfd_create) that can be sealed. Returns the fd or -errno.
int create_memory_file(const char* debug_name);

// Adds seals (SealFlags) to a memory file, and reads the seals it has.
enum SealFlags : int { kSealSeal = 1, kSealShrink = 2, kSealGrow = 4, kSealWrite = 8 };
int add_seals(int fd, int seals);
int get_seals(int fd);

// The kind and size of an open file.
int file_info(int fd, FileInfo* out);

// Sets the size of an open file, extending it with zeros or cutting it short.
int resize_file(int fd, uint64_t size);

// Extends an open file from `size` to `new_size` bytes with the blocks of the new part
// allocated now (fallocate mode 0), so that a full file system answers ENOSPC here rather
// than at a later write through a mapping. -EOPNOTSUPP where the file system cannot
// allocate ahead (the caller then extends the file sparsely). A failure may leave part of
// the range allocated, and the file longer: the caller sets the size back.
int reserve_file(int fd, uint64_t size, uint64_t new_size);

// Maps `length` bytes of the open file `fd`, starting at `offset`, which must be a multiple
// of page_size(). On success stores the address in *out and returns 0. A non-zero `hint` is
// the address the mapping must start at, taken only if that range is free
// (MAP_FIXED_NOREPLACE): -EEXIST if anything is mapped there. Nothing memmap does replaces
// an existing mapping.
int map_file(int fd, uint64_t offset, size_t length, Access access, int flags, uintptr_t hint,
             void** out);

// Maps `length` bytes of zero-filled memory. `shared` memory is inherited by forked
// children as shared memory; otherwise it is private. `hint` as for map_file. With huge page
// flags, `length` must be a multiple of the huge page size.
int map_anonymous(size_t length, bool shared, int flags, uintptr_t hint, void** out);

// The page size a file's mappings use: the huge page size for a file on hugetlbfs, else 0
// (the base page size). Never fails: 0 when it cannot tell.
size_t mapping_granule(int fd);

// Releases a range created by map_file or map_anonymous.
int unmap(void* addr, size_t length);

// Grows or shrinks a mapping (mremap), moving it if it cannot grow where it is. Stores the
// new start in *out. The pages keep their contents; a file mapping keeps following its file.
int resize_mapping(void* addr, size_t length, size_t new_length, void** out);

// Replaces the pages of a range this process mapped with fresh private zero-filled memory at
// the same address, so that views which cannot be detached stay readable while the file
// behind them is released. The address must be one memmap itself mapped.
int replace_with_zero_pages(void* addr, size_t length);

// How many mappings (kernel VMAs) the process holds, the figure vm.max_map_count caps: the
// lines of /proc/self/maps. -errno if it cannot be read; -ENOSYS where there is no such cap.
int64_t count_mappings();

// Writes the dirty pages of a range back to its file and waits until they are written
// (MS_SYNC), or with kFlushAsync only schedules the write (MS_ASYNC).
enum FlushFlags : int {
  kFlushAsync = 1 << 0,  // schedule the write-back and return (MS_ASYNC instead of MS_SYNC)
  kFlushInvalidate = 1 << 1,  // also drop other mappings' cached copies (MS_INVALIDATE)
};
int flush(void* addr, size_t length, int how);

// Gives the kernel an access-pattern hint for a range.
int advise(void* addr, size_t length, Advice advice);

// What a range of a mapping may be used for. Never executable.
enum class Protection : int { kNone = 0, kRead = 1, kReadWrite = 2 };

// Changes the protection of a range (mprotect).
int protect_range(void* addr, size_t length, Protection protection);

// NUMA memory policies for a range (mbind(2)), renumbered.
enum class NumaPolicy : int { kDefault = 0, kPreferred = 1, kBind = 2, kInterleave = 3 };

// Sets the NUMA policy of a range: which nodes (bits of `nodes`, node 0 the lowest) its pages
// come from. `move` also migrates pages already in place (MPOL_MF_MOVE).
int bind_range(void* addr, size_t length, NumaPolicy policy, uint64_t nodes, bool move);

// Keeps a range in RAM (mlock), or with `on_fault` only the pages already touched and each
// page as it is touched later (mlock2 with MLOCK_ONFAULT). unlock_range undoes either.
int lock_range(void* addr, size_t length, bool on_fault);
int unlock_range(void* addr, size_t length);

// Which pages of a mapped range are resident: writes one byte per page to `out` (rounded up),
// 1 if resident, else 0 (mincore). Touches nothing.
int resident_pages(void* addr, size_t length, uint8_t* out);

// The same for a range of a file, whether or not this process maps it: which of its pages are
// in the page cache. Maps the range without reading it, asks, and unmaps.
int file_resident_pages(int fd, uint64_t offset, uint64_t length, uint8_t* out);

// Starts reading a file range into the page cache (posix_fadvise WILLNEED, then readahead).
int prefetch_file(int fd, uint64_t offset, uint64_t length);

// Writes a file's dirty pages (fdatasync), then asks the kernel to drop the range's clean
// pages from the page cache (posix_fadvise DONTNEED). Pages mapped by a process stay.
int evict_file(int fd, uint64_t offset, uint64_t length);

// The limit on locked memory (RLIMIT_MEMLOCK), soft and hard, in bytes; kUnlimited for none.
constexpr uint64_t kUnlimited = ~uint64_t{0};
int memlock_limit(uint64_t* soft, uint64_t* hard);

// Makes the file's data and metadata (its size among them) durable.
int sync_file(int fd);

// A duplicate of `fd` that is closed on exec, or -errno.
int duplicate_fd(int fd);

// Closes a file descriptor; EINTR is not retried (Linux closes the descriptor regardless).
int close_fd(int fd);

// The sum of every byte in [data, data + length) as an unsigned 64-bit number. Not a kernel
// call, but a plain loop over memory that belongs beside the calls that produce that memory.
uint64_t byte_sum(const void* data, size_t length);

}  // namespace mm

#endif  // MEMMAP_OS_MM_H_
