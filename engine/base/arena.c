/*
** arena.c: bump allocation in blocks; see arena.h.
*/
#include <stdlib.h>
#include <string.h>
#include "arena.h"

#define ARENA_BLOCK 16384

struct pw_arena_block {
  pw_arena_block *next;
  size_t size;
  max_align_t data[];
};

void *pw_arena_alloc(pw_arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!a->head || a->used + n > a->head->size) {
    size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
    pw_arena_block *b = malloc(sizeof *b + size);
    if (!b) return NULL;
    b->size = size;
    b->next = a->head;
    a->head = b;
    a->used = 0;
  }
  void *p = (char *)a->head->data + a->used;
  a->used += n;
  return p;
}

char *pw_arena_strdup(pw_arena *a, const char *s, size_t n) {
  char *p = pw_arena_alloc(a, n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void pw_arena_reset(pw_arena *a) {
  if (!a->head) return;
  pw_arena_block *b = a->head->next;   /* keep only the newest block */
  while (b) { pw_arena_block *n = b->next; free(b); b = n; }
  a->head->next = NULL;
  a->used = 0;
}

void pw_arena_free(pw_arena *a) {
  pw_arena_block *b = a->head;
  while (b) { pw_arena_block *n = b->next; free(b); b = n; }
  a->head = NULL;
  a->used = 0;
}
