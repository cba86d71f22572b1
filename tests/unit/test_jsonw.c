/*
** test_jsonw.c: the JSON writer (engine/base/jsonw.c) puts commas only
** between members and elements, at any depth, escapes every key and
** string, writes null for a NULL string, and continues a document other
** code started (pw_jsonw_init_in, pw_jsonw_value).
*/
#include <stdlib.h>
#include "jsonw.h"
#include "pwtest.h"

static void test_shapes(void) {
  pw_buf b = {0};
  pw_jsonw w;
  pw_jsonw_init(&w, &b);
  pw_jsonw_begin_object(&w);
  pw_jsonw_field_str(&w, "id", "a\"b\\c\n");
  pw_jsonw_field_int(&w, "n", -3);
  pw_jsonw_field_bool(&w, "t", 1);
  pw_jsonw_field_bool(&w, "f", 0);
  pw_jsonw_field_str(&w, "none", NULL);
  pw_jsonw_key(&w, "empty");
  pw_jsonw_begin_array(&w);
  pw_jsonw_end_array(&w);
  pw_jsonw_key(&w, "list");
  pw_jsonw_begin_array(&w);
  pw_jsonw_int(&w, 1);
  pw_jsonw_begin_object(&w);
  pw_jsonw_end_object(&w);
  pw_jsonw_begin_array(&w);
  pw_jsonw_str(&w, "x");
  pw_jsonw_null(&w);
  pw_jsonw_end_array(&w);
  pw_jsonw_rawf(&w, "%.2f", 1.5);
  pw_jsonw_end_array(&w);
  pw_jsonw_key(&w, "k\"ey");
  pw_jsonw_raw(&w, "{\"r\":1}", 7);
  pw_jsonw_end_object(&w);
  CHECK_STR(b.data, "{\"id\":\"a\\\"b\\\\c\\n\",\"n\":-3,\"t\":true,\"f\":false,\"none\":null,\"empty\":[],"
                    "\"list\":[1,{},[\"x\",null],1.50],\"k\\\"ey\":{\"r\":1}}");
  pw_buf_free(&b);
}

static void test_continue(void) {
  pw_buf b = {0};
  pw_jsonw w;
  pw_buf_adds(&b, "{\"a\":1");
  pw_jsonw_init_in(&w, &b);
  pw_jsonw_key(&w, "b");
  pw_buf_adds(pw_jsonw_value(&w), "[2]");
  pw_jsonw_field_int(&w, "c", 3);
  pw_jsonw_end_object(&w);
  CHECK_STR(b.data, "{\"a\":1,\"b\":[2],\"c\":3}");
  pw_buf_free(&b);
}

static void test_invalid_utf8(void) {
  pw_buf b = {0};
  pw_jsonw w;
  pw_jsonw_init(&w, &b);
  pw_jsonw_str(&w, "bad \xff byte");
  CHECK(pw_utf8_valid(b.data, b.len));
  pw_buf_free(&b);
}

PW_TEST_MAIN(test_shapes(); test_continue(); test_invalid_utf8())
