/*
 * log.h: logging for clfd and its workers.
 *
 * Three levels of failure: fatal()/fatalx() only at startup or for an
 * impossible state; log_warn() (appends strerror(errno)) and log_warnx()
 * for one job, file or client; log_errx() for what stops clfd from
 * doing what it was asked (a bad config at start, -t or reload), at
 * error priority; log_info()/log_debug() for the record.
 * On stderr each line carries a "<N>" priority prefix when the journal
 * reads stderr (JOURNAL_STREAM), a "clfd[pid]: " prefix otherwise.
 */
#ifndef CLFD_LOG_H
#define CLFD_LOG_H

#include <stdarg.h>

void	log_init(const char *procname, int debug);
void	log_procname(const char *procname);	/* e.g. "worker 3" after fork */

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_errx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
