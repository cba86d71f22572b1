/*
** test_check.c: pw_engine_check_examples (pathwise check, and every server
** reload) fails an example that could not fail: an unknown key in it or in
** its expect, an id or fact path pathwise does not know, a wrong type, no
** expect. Before issue 9 each of these passed as "ok".
*/
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include "engine.h"
#include "pwtest.h"

#define HEAD "return { id = \"t\", version = \"1\", title = \"t\", references = { [1] = \"r\" },\n" \
  "applies = function() return true end,\n" \
  "evaluate = function(f, out) out.pathway(\"p\") " \
  "out.recommend{ id = \"ras_testing\", text = \"x\", citations = {1} } end,\n" \
  "examples = { "

static pw_buf report;

/* Load a protocol with one example and check it. */
static pw_status check(const char *example) {
  char src[2048];
  pw_error err;
  pw_engine *e = pw_engine_new(NULL, &err);
  snprintf(src, sizeof src, "%s%s } }", HEAD, example);
  pw_buf_free(&report);
  if (pw_engine_load_buffer(e, "t.lua", src, strlen(src), &err) != PW_OK) {
    fprintf(stderr, "load: %s\n", err.msg);
    pw_engine_free(e);
    return PW_EINTERNAL;
  }
  pw_status rc = pw_engine_check_examples(e, &report, &err);
  pw_engine_free(e);
  return rc;
}

/* A protocol loaded from a buffer after one loaded from a file is not
** named by the old file's path (coverage read that file, and check's
** failures named it). */
static int path_follows_load(void) {
  char path[] = "/tmp/pw_test_checkXXXXXX";
  int fd = mkstemp(path);
  const char *src = HEAD "} }";
  if (fd < 0 || write(fd, src, strlen(src)) != (ssize_t)strlen(src)) return 0;
  close(fd);
  pw_error err;
  pw_engine *e = pw_engine_new(NULL, &err);
  int ok = pw_engine_load(e, path, &err) == PW_OK && pw_engine_protocol_path(e) &&
           !strcmp(pw_engine_protocol_path(e), path) &&
           pw_engine_load_buffer(e, "b.lua", src, strlen(src), &err) == PW_OK && !pw_engine_protocol_path(e);
  pw_engine_free(e);
  unlink(path);
  return ok;
}

#define FAILS(example, says) do { CHECK(check(example) == PW_EPROTOCOL); \
  CHECK_CONTAINS(report.data, says); } while (0)

PW_TEST_MAIN({
  CHECK(check("{ name = \"ok\", facts = {}, expect = { pathway = \"p\", recommend = { \"ras_testing\" }, "
              "not_recommend = { \"FOLFIRI\" }, strength = { ras_testing = \"recommended\" }, "
              "order = { \"ras_testing\" } } }") == PW_OK);
  FAILS("{ name = \"a\", facts = {}, expect = { recomend = { \"NOT_AN_ID\" } } }", "unknown key 'recomend'");
  FAILS("{ name = \"b\", facts = {}, expect = { not_recommend = { \"FOLFIRl\" } } }", "unknown id 'FOLFIRl'");
  FAILS("{ name = \"c\", facts = {}, expect = { missing = { \"ecgo\" } } }", "'ecgo' is not a fact path");
  FAILS("{ name = \"d\", facts = {}, expext = {} }", "unknown key 'expext'");
  FAILS("{ name = \"e\", facts = {} }", "needs expect");
  FAILS("{ name = \"f\", facts = {}, expect = { applicable = \"yes\" } }", "expect.applicable must be true or false");
  FAILS("{ name = \"g\", facts = {}, expect = { preferred = { \"ras_testing\" } } }", "expect.preferred 'ras_testing' does not hold");
  FAILS("{ name = \"h\", facts = {}, expect = { strength = { ras_testing = \"consider\" } } }", "has strength recommended");
  CHECK(path_follows_load());
  pw_buf_free(&report);
})
