/*
 * fuzz.h -- what every fuzz target in tests/fuzz/ shares.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput() for one decoder of
 * hostile input. The same file is linked two ways: with clang's libFuzzer
 * (`make fuzz`, which supplies main() and mutates inputs) and with
 * tests/fuzz/replay.c (`make fuzz-corpus`, gcc + ASan/UBSan, which feeds it
 * the files of the seed corpus), so `make check` needs no clang.
 *
 * A target reports a broken invariant with FUZZ_ASSERT, which prints where
 * and aborts: libFuzzer and the sanitizers both treat an abort as a crash and
 * keep the input.
 */
#ifndef CLUSTERMON_TESTS_FUZZ_H
#define CLUSTERMON_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Called once per input; returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
