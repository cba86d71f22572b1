/*
** queue.h: the one FIFO the supervisor keeps pending things in.
**
** Intrusive and allocation-free: an item embeds a pw_qlink and is in at
** most one queue at a time through it. Used for the requests no worker has
** taken yet (srv.pending), the requests handed to one worker (worker.sent),
** the answers waiting for their decision-log record (srv.held) and the
** reload requests waiting for a generation (waiter lists). All O(1) except
** iteration; n is the number of items.
*/
#ifndef PW_QUEUE_H
#define PW_QUEUE_H

#include <stddef.h>

typedef struct pw_qlink {
  struct pw_qlink *next;
} pw_qlink;

typedef struct pw_queue {
  pw_qlink *head, *tail;
  unsigned n;
} pw_queue;

/* The item of type T whose member M is the link l. */
#define PW_QITEM(l, T, M) ((T *)(void *)((char *)(l) - offsetof(T, M)))

static inline void pw_queue_push(pw_queue *q, pw_qlink *l) {
  l->next = NULL;
  if (q->tail) q->tail->next = l;
  else q->head = l;
  q->tail = l;
  q->n++;
}

/* The first item, removed; NULL when empty. */
static inline pw_qlink *pw_queue_pop(pw_queue *q) {
  pw_qlink *l = q->head;
  if (!l) return NULL;
  q->head = l->next;
  if (!q->head) q->tail = NULL;
  l->next = NULL;
  q->n--;
  return l;
}

/* Move every item of from to the front of q, in from's order. */
static inline void pw_queue_push_front(pw_queue *q, pw_queue *from) {
  if (!from->head) return;
  from->tail->next = q->head;
  q->head = from->head;
  if (!q->tail) q->tail = from->tail;
  q->n += from->n;
  from->head = from->tail = NULL;
  from->n = 0;
}

/* Take every item out of q (q becomes empty), in order. */
static inline pw_queue pw_queue_take(pw_queue *q) {
  pw_queue all = *q;
  q->head = q->tail = NULL;
  q->n = 0;
  return all;
}

#endif
