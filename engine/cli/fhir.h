/*
** fhir.h: the FHIR input commands of the `pathwise` program (fhir.c):
** `pathwise facts --from fhir` and `pathwise eval --from fhir`.
*/
#ifndef PW_FHIR_H
#define PW_FHIR_H

int pw_fhir_facts_main(int argc, char **argv);
int pw_fhir_eval_main(int argc, char **argv);
/* Does an eval command line ask for FHIR input (--from)? */
int pw_fhir_wanted(int argc, char **argv);

#endif
