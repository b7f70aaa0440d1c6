/*
 * clfd.c: main(): options, config, logging, then hand off to the
 * supervisor.
 */
#include <config.h>

#include "config.h"
#include "log.h"
#include "supervisor.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* As the config's "workers": one process per slot, a few hundred at most. */
#define CLFD_WORKERS_MAX	256

static void
usage(FILE *f)
{
	fprintf(f, "usage: clfd [-dhtV] [-f config] [-i idle-exit-secs] "
	    "[-s socket] [-w workers]\n");
}

/* A number option from min to max; exits with usage on anything else. */
static int
clfd_number(const char *opt, const char *s, int min, int max)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "clfd: -%s: bad number \"%s\"\n", opt, s);
		exit(2);
	}
	return (int)v;
}

/* Make sure fds 0-2 are open, so no socket lands on them. */
static void
clfd_stdio(void)
{
	int	fd;

	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
		;
	if (fd > 2)
		close(fd);
}

int
main(int argc, char **argv)
{
	struct supervisor_opts	 opts;
	struct config		*cfg;
	const char		*file = NULL;
	char			 err[512];
	int			 ch, test = 0, debug = 0;

	worker_title_init(argc, argv);
	memset(&opts, 0, sizeof opts);
	while ((ch = getopt(argc, argv, "df:hi:s:tVw:")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'f':
			file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'i':
			opts.idle_exit = clfd_number("i", optarg, 0, 86400 * 366);
			break;
		case 's':
			opts.socket_path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			printf("clfd %s\n", PACKAGE_VERSION);
			return 0;
		case 'w':
			opts.workers = clfd_number("w", optarg, 1, CLFD_WORKERS_MAX);
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	clfd_stdio();
	log_init("clfd", debug);

	if ((cfg = calloc(1, sizeof *cfg)) == NULL)
		fatal("calloc");
	config_defaults(cfg);
	if (file != NULL && config_load(cfg, file, err, sizeof err) == -1) {
		/* Error priority in the journal, -t included (ExecStartPre). */
		log_errx("%s", err);
		config_free(cfg);
		free(cfg);
		return 1;
	}
	if (test) {
		printf("clfd: configuration %s is ok\n",
		    file != NULL ? file : "(defaults)");
		config_free(cfg);
		free(cfg);
		return 0;
	}
	opts.config_file = file;
	return supervisor_main(cfg, &opts);
}
