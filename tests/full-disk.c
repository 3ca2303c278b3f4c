/* full-disk.c — a full disk on demand, for tests. Linked into a test program (test-store, and the app
 * as hearth-full-disk), it defines write(), pwrite() and pwrite64(): while the file named by
 * $HEARTH_FULL_DISK_WHEN exists, a write to a file whose path contains $HEARTH_FULL_DISK_PATH fails
 * with ENOSPC, as on a full disk; every other write goes through. With $HEARTH_FULL_DISK_ARM set, the first
 * such write whose bytes hold that text makes the file itself, once (the disk fills at that moment: a test
 * catches a write no test could time, say a reply's end). The program's own definitions come first for
 * every library it loads (SQLite's included); the real calls come from dlsym(RTLD_NEXT). */
#undef _FILE_OFFSET_BITS /* pwrite and pwrite64 as two symbols, each defined below */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int
disk_full_for(int fd, const void *buf, size_t n)
{
    const char *when = getenv("HEARTH_FULL_DISK_WHEN");
    const char *match = getenv("HEARTH_FULL_DISK_PATH");
    const char *arm = getenv("HEARTH_FULL_DISK_ARM");
    const int armed = arm && *arm && memmem(buf, n, arm, strlen(arm)) != NULL;
    if (!when || !*when || !match || !*match || (!armed && access(when, F_OK) != 0))
        return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0)
        return 0;
    target[len] = '\0';
    if (!strstr(target, match))
        return 0;
    static int fired; /* the text fills the disk once; with space again, it goes through */
    if (armed && access(when, F_OK) != 0) {
        if (fired)
            return 0;
        fired = 1;
        int made = open(when, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (made >= 0)
            close(made);
    }
    return 1;
}

/* true, with errno ENOSPC, when this write fails */
static int
refused(int fd, const void *buf, size_t n)
{
    if (!disk_full_for(fd, buf, n))
        return 0;
    errno = ENOSPC;
    return 1;
}

typedef ssize_t (*WriteFn)(int, const void *, size_t);
typedef ssize_t (*PwriteFn)(int, const void *, size_t, off_t);
typedef ssize_t (*Pwrite64Fn)(int, const void *, size_t, off64_t);

ssize_t
write(int fd, const void *buf, size_t n)
{
    static WriteFn real;
    if (!real)
        real = (WriteFn)dlsym(RTLD_NEXT, "write");
    if (refused(fd, buf, n))
        return -1;
    return real(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t offset)
{
    static PwriteFn real;
    if (!real)
        real = (PwriteFn)dlsym(RTLD_NEXT, "pwrite");
    if (refused(fd, buf, n))
        return -1;
    return real(fd, buf, n, offset);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t offset)
{
    static Pwrite64Fn real;
    if (!real)
        real = (Pwrite64Fn)dlsym(RTLD_NEXT, "pwrite64");
    if (refused(fd, buf, n))
        return -1;
    return real(fd, buf, n, offset);
}
