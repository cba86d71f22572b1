/*
** arena.h: a bump allocator for one evaluation's strings and arrays.
** pw_arena_reset keeps the first block for reuse, so a steady stream of
** evaluations allocates nothing after warm-up. Allocation failure aborts
** through the caller's check (NULL return).
*/
#ifndef PW_ARENA_H
#define PW_ARENA_H

#include <stddef.h>

typedef struct pw_arena_block pw_arena_block;
typedef struct pw_arena {
  pw_arena_block *head;
  size_t used;
} pw_arena;

void *pw_arena_alloc(pw_arena *a, size_t n);
char *pw_arena_strdup(pw_arena *a, const char *s, size_t n);
void pw_arena_reset(pw_arena *a);
void pw_arena_free(pw_arena *a);

#endif
