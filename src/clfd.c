/*
 * clfd.c: main(): options, config, logging, then hand off to the
 * supervisor.
 */
#include <config.h>

#include "config.h"
#include "log.h"
#include "suggest.h"
#include "supervisor.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* As the config's "workers": one process per slot, a few hundred at most. */
#define CLFD_WORKERS_MAX	256
/* The file clfd -t checks when -f names none (configure's sysconfdir). */
#ifndef CLFD_CONFIG_FILE
#define CLFD_CONFIG_FILE	"/etc/clfd.conf"
#endif

static const struct option clfd_long_opts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 }
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: clfd [-dhtV] [-f config] [-i idle-exit-secs] "
	    "[-s socket] [-w workers]\n"
	    "  -d  debug log          -f  config file (-t: default %s)\n"
	    "  -i  idle exit, s       -s  socket\n"
	    "  -t  check the config   -w  workers, 0 to %d (0: one per CPU)\n"
	    "  -h, --help  this help  -V, --version  version\n",
	    CLFD_CONFIG_FILE, CLFD_WORKERS_MAX);
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
		fprintf(stderr, "clfd: -%s: \"%s\" is not a number from %d to "
		    "%d\n", opt, s, min, max);
		exit(2);
	}
	return (int)v;
}

/*
 * A bad option: named, with the closest long option when it looks like a
 * misspelt one ("--hlep": did you mean --help?), then the usage.
 */
static void
clfd_bad_option(int ch, const char *arg)
{
	const char	*best;

	if (ch == ':')
		fprintf(stderr, "clfd: %s needs an argument\n", arg);
	else if (strncmp(arg, "--", 2) == 0 &&
	    (best = suggest_option(arg, clfd_long_opts)) != NULL)
		fprintf(stderr, "clfd: unknown option %s; did you mean --%s?\n",
		    arg, best);
	else if (strncmp(arg, "--", 2) == 0)
		fprintf(stderr, "clfd: unknown option %s\n", arg);
	else
		fprintf(stderr, "clfd: unknown option -%c\n", optopt);
	usage(stderr);
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
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":df:hi:s:tVw:", clfd_long_opts,
	    NULL)) != -1) {
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
			/* -w 0 is workers = 0: one per CPU, whatever the file */
			opts.workers = clfd_number("w", optarg, 0,
			    CLFD_WORKERS_MAX);
			if (opts.workers == 0)
				opts.workers = -1;
			break;
		default:
			clfd_bad_option(ch, argv[optind - 1]);
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
	/* -t checks the default file when -f names none, as nginx -t does */
	if (test && file == NULL)
		file = CLFD_CONFIG_FILE;
	if (file != NULL && config_load(cfg, file, err, sizeof err) == -1) {
		/* Error priority in the journal, -t included (ExecStartPre). */
		log_errx("%s", err);
		config_free(cfg);
		free(cfg);
		return 1;
	}
	if (test) {
		printf("clfd: configuration %s is ok\n", file);
		config_free(cfg);
		free(cfg);
		return 0;
	}
	opts.config_file = file;
	return supervisor_main(cfg, &opts);
}
