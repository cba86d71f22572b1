/*
** cds.h: the CDS Hooks 2.0 service (issue 14), transport-free.
**
** Discovery: per protocol, one service per hook (patient-view, order-select,
** order-sign), id "<protocol id>-<hook>", with the prefetch templates the
** FHIR adapter reads (Observation filtered by the LOINC codes of its code
** table). A call: the request JSON is decoded in the adapter's state; a
** needed prefetch key that is absent answers 412; a key present as null is
** unknown data; an OperationOutcome or a paged searchset is incomplete data
** (both said on a card). The prefetch goes through the FHIR adapter into
** facts; draft MedicationRequests (context.draftOrders) become proposed
** orders through the adapter's RxNorm table (agents, products); drugs it does
** not know are listed as not evaluated. The engine's result becomes cards:
** a critical card per blocked draft order, one info card (plan and
** alternatives), one warning card (missing facts, incomplete data), urgent
** warnings as critical cards; ids are hashes of hookInstance and item. Never
** prints; the HTTP status and the body (cards, or an OperationOutcome) come
** back to the caller.
*/
#ifndef PW_CDS_H
#define PW_CDS_H

#include <stddef.h>
#include "pathwise.h"
#include "adapter.h"

enum { PW_CDS_PATIENT_VIEW = 0, PW_CDS_ORDER_SELECT, PW_CDS_ORDER_SIGN, PW_CDS_NHOOKS };

typedef struct pw_cds pw_cds;

typedef struct pw_cds_protocol {
  const char *id, *title, *version;
} pw_cds_protocol;

/* Load the adapter's code table (codes.lua: RxNorm agents and products,
** the LOINC codes for the Observation prefetch). */
pw_cds *pw_cds_new(const char *codes_path, pw_error *err);
void pw_cds_free(pw_cds *c);

const char *pw_cds_hook_name(int hook);

/* {"services":[...]} for these protocols. */
void pw_cds_discovery(const pw_cds *c, const pw_cds_protocol *p, int n, pw_buf *out);

/* "<protocol id>-<hook>" -> hook (PW_CDS_*) and *proto (index in p), or -1. */
int pw_cds_service(const char *id, const pw_cds_protocol *p, int n, int *proto);

/* Answer one call of the service for hook with engine e (its protocol) and
** adapter a, as of the date as_of (NULL: today, UTC; the request's
** extension "org.pathwise.as_of" overrides both). Appends the response body to out (cards JSON, or an
** OperationOutcome for an error) and returns the HTTP status. */
int pw_cds_call(const pw_cds *c, pw_engine *e, pw_adapter *a, int hook, const char *body,
                size_t len, const char *as_of, pw_buf *out);

/* An OperationOutcome body with one issue (code: FHIR issue type). */
void pw_cds_outcome(pw_buf *out, const char *code, const char *msg);

#endif
