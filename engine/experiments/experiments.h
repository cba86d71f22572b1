/*
** experiments.h: the experiment commands (issue 5). main.c dispatches
** `pathwise batch|cohort|diff` here with argv[0] = the command name, and
** `pathwise check ... --coverage ...` with argv[0] = "check". Each returns
** a sysexits(3) code (command.h). Shared machinery is in exp.h.
*/
#ifndef PW_EXPERIMENTS_H
#define PW_EXPERIMENTS_H

int pw_batch_main(int argc, char **argv);
int pw_cohort_main(int argc, char **argv);
int pw_diff_main(int argc, char **argv);
int pw_coverage_main(int argc, char **argv);

#endif
