/*
** pwtest.h: the smallest test harness that reports well.
** CHECK(cond) records a failure with file and line and carries on;
** PW_TEST_MAIN prints "N passed, N failed" and exits non-zero on failure.
*/
#ifndef PWTEST_H
#define PWTEST_H
#include <stdio.h>
#include <string.h>

static int pwt_pass, pwt_fail;

#define CHECK(cond) do { if (cond) pwt_pass++; else { pwt_fail++; \
  fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
  if (a_ && b_ && strcmp(a_, b_) == 0) pwt_pass++; else { pwt_fail++; \
  fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\"\n", __FILE__, __LINE__, \
          b_ ? b_ : "(null)", a_ ? a_ : "(null)"); } } while (0)
#define CHECK_CONTAINS(hay, needle) do { const char *h_ = (hay), *n_ = (needle); \
  if (h_ && strstr(h_, n_)) pwt_pass++; else { pwt_fail++; \
  fprintf(stderr, "%s:%d: \"%s\" not found in \"%s\"\n", __FILE__, __LINE__, n_, h_ ? h_ : "(null)"); } } while (0)

#define PW_TEST_MAIN(body) int main(void) { body; \
  printf("%d passed, %d failed\n", pwt_pass, pwt_fail); return pwt_fail ? 1 : 0; }
#endif
