/*
** replay.c: runs a libFuzzer target over files without libFuzzer, so that
** ctest (with gcc) keeps the fuzz targets building and their properties
** holding on the committed corpus (tests/fuzz/corpus/<target>/: inputs
** that once failed) and on the examples.
**
**   replay [--prefix] FILE...
**
** Each file is one input. With --prefix, each file is plain text (an
** example) and is run twice, behind a first byte of 0 and of 1 (the
** targets' option byte). A failed property aborts, as under libFuzzer.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static uint8_t *replay_read(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  uint8_t *b = NULL;
  long len;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (b = malloc((size_t)len + 2)) != NULL && fread(b + 1, 1, (size_t)len, f) == (size_t)len) {
    *n = (size_t)len;
  } else {
    free(b);
    b = NULL;
  }
  fclose(f);
  return b;
}

int main(int argc, char **argv) {
  int prefix = 0, runs = 0;
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; i++) {
    size_t n;
    uint8_t *b;
    if (!strcmp(argv[i], "--prefix")) { prefix = 1; continue; }
    if (!(b = replay_read(argv[i], &n))) {
      fprintf(stderr, "replay: cannot read %s\n", argv[i]);
      return 66;
    }
    if (prefix) {
      for (uint8_t opt = 0; opt < 2; opt++) {
        b[0] = opt;
        LLVMFuzzerTestOneInput(b, n + 1);
        runs++;
      }
    } else {
      LLVMFuzzerTestOneInput(b + 1, n);
      runs++;
    }
    free(b);
  }
  printf("replay: %d inputs, every property held\n", runs);
  return runs ? 0 : 66;
}
