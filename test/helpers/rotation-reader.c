/*
 * A reader for the rotation-race tests, in C so that it reads as fast as a
 * real program would and nothing of ours runs between its system calls.
 * Each version of the file is "v%07d\n" followed by bytes derived from the
 * version (see versionBytes in fuse-rotation.test.ts), so one read can tell
 * whether it got one whole version or a mix.
 *
 *   rotation-reader loop FILE SIZE   open + read to EOF + close until SIGTERM; then prints
 *                                    "reads N versions M last V"; exits 1 at the first bad read
 *   rotation-reader hold FILE SIZE   opens, reads the first page, prints "held V", waits for a
 *                                    line on stdin, then reads the whole file again through the
 *                                    same fd and prints "ok V" if it is all version V
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

/* Returns the version the bytes are, or -1 (with a message) if they are not one whole version. */
static long check(const unsigned char *buf, long got, long size) {
  if (got != size) { fprintf(stderr, "read %ld bytes, expected %ld\n", got, size); return -1; }
  if (size < 9 || buf[0] != 'v' || buf[8] != '\n') { fprintf(stderr, "no version header\n"); return -1; }
  long v = strtol((const char *)buf + 1, NULL, 10);
  for (long i = 9; i < size; i++) {
    if (buf[i] != (unsigned char)('a' + (v * 7 + i) % 26)) {
      fprintf(stderr, "byte %ld is not version %ld's: a mix of versions\n", i, v);
      return -1;
    }
  }
  return v;
}

static long read_all(int fd, unsigned char *buf, long cap) {
  long got = 0;
  for (;;) {
    ssize_t r = read(fd, buf + got, got + 4096 <= cap ? 4096 : (size_t)(cap - got));
    if (r < 0) { if (errno == EINTR) continue; perror("read"); return -1; }
    if (r == 0) return got;
    got += r;
    if (got >= cap) return got;
  }
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: rotation-reader loop|hold FILE SIZE\n"); return 2; }
  long size = atol(argv[3]);
  unsigned char *buf = malloc(size + 4096);
  if (strcmp(argv[1], "loop") == 0) {
    signal(SIGTERM, on_term);
    long reads = 0, versions = 0, last = -1;
    while (!stop) {
      int fd = open(argv[2], O_RDONLY);
      if (fd < 0) { if (errno == EINTR) continue; perror("open"); return 1; }
      long got = read_all(fd, buf, size + 4096);
      close(fd);
      if (got < 0) return 1;
      long v = check(buf, got, size);
      if (v < 0) return 1;
      /* Opens are ordered: a later open never sees an older version. */
      if (v < last) { fprintf(stderr, "version %ld after version %ld\n", v, last); return 1; }
      if (v != last) versions++;
      last = v;
      reads++;
    }
    printf("reads %ld versions %ld last %ld\n", reads, versions, last);
    return 0;
  }
  if (strcmp(argv[1], "hold") == 0) {
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    ssize_t first = read(fd, buf, 4096);
    if (first < 9) { fprintf(stderr, "short first read\n"); return 1; }
    long held = strtol((const char *)buf + 1, NULL, 10);
    printf("held %ld\n", held);
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    if (lseek(fd, 0, SEEK_SET) != 0) { perror("lseek"); return 1; }
    long got = read_all(fd, buf, size + 4096);
    if (got < 0) return 1;
    long v = check(buf, got, size);
    if (v < 0) return 1;
    if (v != held) { fprintf(stderr, "held version %ld, read %ld\n", held, v); return 1; }
    printf("ok %ld\n", v);
    return 0;
  }
  fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}
