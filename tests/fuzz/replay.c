/*
 * replay.c -- runs a fuzz target's LLVMFuzzerTestOneInput() on files, without
 * libFuzzer, so the seed corpus (and any crash input kept in it) is checked
 * by `make check` under gcc's ASan and UBSan with no clang installed.
 *
 *   replay_<target> FILE...
 *
 * Each file is read into a heap buffer of exactly its size (so a read past
 * the end is caught by ASan, as under libFuzzer) and given to the target.
 * A sanitizer report or a broken invariant aborts the process: the caller
 * runs one file per process to count and name failures. Exit 0 when every
 * file ran, 2 if one could not be read.
 */
#include <errno.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

static int run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0, n;
    uint8_t *buf = malloc(cap);
    while (buf && (n = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += n;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    if (!buf || ferror(fp)) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        fclose(fp);
        free(buf);
        return -1;
    }
    fclose(fp);
    /* exactly len bytes, so an overread is a heap-buffer-overflow */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    int status = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (run_file(argv[i]) != 0)
            status = 2;
    return status;
}
