/*
** lpool.c: size-class pools for one Lua state; see lpool.h.
**
** Each slab (64 KiB of the region) serves one size class: never-used
** blocks are carved from its start (bump), freed ones go on the slab's own
** free list, so a slab knows when all its blocks are free. A class's slabs
** with room are on its `avail` list (the one in use first); a full slab
** leaves the list and comes back when one of its blocks is freed. A block
** belongs to the pool iff its address is in the region: its slab is
** (address - base) / 64 KiB, its class is the slab's.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "lpool.h"

#define SLAB_SHIFT 16
#define SLAB ((size_t)1 << SLAB_SHIFT)
#define COMMIT_STEP ((size_t)1 << 20)   /* region made read-write in these steps */
#define NCLASS 40
#define EMPTY_KEEP 16                   /* empty slabs kept before a sweep */
#define PAGE 4096

typedef struct slab {
  void *free;                 /* freed blocks of this slab, linked through their first word */
  uint32_t bump;              /* offset of the first never-used block */
  uint32_t live;              /* blocks in use */
  uint32_t size;              /* block size of its class */
  uint8_t cls, listed;
  struct slab *next, *prev;   /* the class's avail list (or the spare list) */
} slab;

struct pw_lpool {
  char *map;                  /* the mapping; base is its first SLAB-aligned byte */
  size_t maplen;
  char *base;
  size_t nslabs;              /* slabs the region holds */
  size_t top;                 /* slabs handed out so far */
  size_t committed;           /* bytes from base made read-write */
  size_t empty;               /* listed slabs with no live block */
  size_t keep;                /* sweep when empty passes this */
  slab *spare;                /* slabs given back to the kernel, for reuse */
  slab *avail[NCLASS];
  slab meta[];                /* one per slab */
};

static unsigned cls_of(size_t n) { return n <= 128 ? (unsigned)((n + 7) >> 3) - 1 : 16 + (unsigned)((n - 129) >> 4); }
static uint32_t cls_size(unsigned c) { return c < 16 ? 8 * (c + 1) : 128 + 16 * (c - 15); }
static char *slab_mem(const pw_lpool *p, const slab *s) { return p->base + ((size_t)(s - p->meta) << SLAB_SHIFT); }
static int owns(const pw_lpool *p, const void *ptr) {
  return (uintptr_t)((const char *)ptr - p->base) < (p->nslabs << SLAB_SHIFT);
}

pw_lpool *pw_lpool_new(size_t reserve) {
  size_t n = (reserve + SLAB - 1) >> SLAB_SHIFT;
  if (n < 16) n = 16;
  if (n > ((size_t)4 << 30) >> SLAB_SHIFT) n = ((size_t)4 << 30) >> SLAB_SHIFT;   /* 4 GiB at most */
  pw_lpool *p = calloc(1, sizeof *p + n * sizeof(slab));
  if (!p) return NULL;
  /* reserved, not committed: PROT_NONE costs no memory and no commit charge */
  p->maplen = (n + 1) << SLAB_SHIFT;
  p->map = mmap(NULL, p->maplen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p->map == MAP_FAILED) { free(p); return NULL; }
  p->base = (char *)(((uintptr_t)p->map + SLAB - 1) & ~(uintptr_t)(SLAB - 1));
  p->nslabs = n;
  p->keep = EMPTY_KEEP;
  return p;
}

void pw_lpool_free(pw_lpool *p) {
  if (!p) return;
  munmap(p->map, p->maplen);
  free(p);
}

static void avail_push(pw_lpool *p, slab *s) {
  s->prev = NULL;
  s->next = p->avail[s->cls];
  if (s->next) s->next->prev = s;
  p->avail[s->cls] = s;
  s->listed = 1;
}

static void avail_drop(pw_lpool *p, slab *s) {
  if (s->prev) s->prev->next = s->next; else p->avail[s->cls] = s->next;
  if (s->next) s->next->prev = s->prev;
  s->listed = 0;
}

/* A fresh slab for class c: a spare one, else the next of the region
** (committing another step when needed); NULL when the region is full. */
static slab *slab_new(pw_lpool *p, unsigned c) {
  slab *s = p->spare;
  if (s) p->spare = s->next;
  else {
    if (p->top == p->nslabs) return NULL;
    size_t end = (p->top + 1) << SLAB_SHIFT;
    if (end > p->committed) {
      size_t step = COMMIT_STEP, room = (p->nslabs << SLAB_SHIFT) - p->committed;
      if (step > room) step = room;
      if (mprotect(p->base + p->committed, step, PROT_READ | PROT_WRITE)) return NULL;
      p->committed += step;
    }
    s = &p->meta[p->top++];
  }
  s->free = NULL;
  s->bump = 0;
  s->live = 0;
  s->cls = (uint8_t)c;
  s->size = cls_size(c);
  avail_push(p, s);
  p->empty++;
  return s;
}

/* Give the empty slabs back to the kernel, but the first of each class's
** list (the one in use: a block freed and taken again must not cost a
** system call each time). */
static void sweep(pw_lpool *p) {
  size_t left = 0;
  for (unsigned c = 0; c < NCLASS; c++) {
    slab *s = p->avail[c];
    if (!s) continue;
    left += s->live == 0;
    for (slab *t = s->next, *nx; t; t = nx) {
      nx = t->next;
      if (t->live) continue;
      avail_drop(p, t);
      madvise(slab_mem(p, t), (t->bump + PAGE - 1) & ~(size_t)(PAGE - 1), MADV_DONTNEED);
      t->next = p->spare;
      p->spare = t;
    }
  }
  p->empty = left;
  p->keep = left + EMPTY_KEEP;
}

static void *pool_get(pw_lpool *p, unsigned c) {
  slab *s = p->avail[c];
  if (!s && !(s = slab_new(p, c))) return NULL;
  void *b = s->free;
  if (b) s->free = *(void **)b;
  else {
    b = slab_mem(p, s) + s->bump;
    s->bump += s->size;
  }
  if (s->live++ == 0) p->empty--;
  if (!s->free && s->bump + s->size > SLAB) avail_drop(p, s);   /* full */
  return b;
}

static void pool_put(pw_lpool *p, void *b) {
  slab *s = &p->meta[(size_t)((char *)b - p->base) >> SLAB_SHIFT];
  *(void **)b = s->free;
  s->free = b;
  if (!s->listed) avail_push(p, s);
  if (--s->live == 0 && ++p->empty > p->keep) sweep(p);
}

void pw_lpool_release(pw_lpool *p, void *ptr, size_t osize) {
  (void)osize;
  if (ptr && owns(p, ptr)) pool_put(p, ptr);
  else free(ptr);
}

void *pw_lpool_realloc(pw_lpool *p, void *ptr, size_t osize, size_t nsize) {
  int in = ptr && owns(p, ptr);
  if (!ptr) osize = 0;
  void *n;
  if (nsize <= PW_LPOOL_MAX) {
    unsigned c = cls_of(nsize);
    if (in && p->meta[(size_t)((char *)ptr - p->base) >> SLAB_SHIFT].cls == c) return ptr;
    if (!(n = pool_get(p, c)) && !(n = malloc(nsize))) return NULL;   /* region full: malloc */
  } else {
    if (!in) return realloc(ptr, nsize);
    if (!(n = malloc(nsize))) return NULL;
  }
  if (ptr) {
    memcpy(n, ptr, osize < nsize ? osize : nsize);
    if (in) pool_put(p, ptr); else free(ptr);
  }
  return n;
}
