/* The exit report (GCSHIM_REPORT=exit): a leak check from the library's
 * destructor, printed as LeakSanitizer prints its report, with frames
 * named through libdw, suppressions (GCSHIM_SUPPRESSIONS) applied, and
 * GCSHIM_REPORT_EXITCODE as the exit status when something leaked. */
#ifndef GCSHIM_REPORT_H
#define GCSHIM_REPORT_H

/* The GCSHIM_REPORT option, read in the constructor. */
void report_init(void);

/* From the library's destructor: the report; returns the status the
 * process is to exit with (GCSHIM_REPORT_EXITCODE when leaks were left
 * after the suppressions), or 0 to exit as it meant to. */
int report_at_exit(void);

#endif
