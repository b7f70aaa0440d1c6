/*
 * config.c: clfd's settings: the built-in defaults and the clfd.conf
 * reader (key = value, '#' comments).
 */
#include "config.h"
#include "filter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char **
strv_dup(const char *const *v)
{
	size_t	  n = 0, i;
	char	**r;

	while (v[n] != NULL)
		n++;
	if ((r = calloc(n + 1, sizeof *r)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if ((r[i] = strdup(v[i])) == NULL)
			goto fail;
	return r;
fail:
	while (i > 0)
		free(r[--i]);
	free(r);
	return NULL;
}

static void
strv_free(char **v)
{
	size_t	i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

void
config_defaults(struct config *c)
{
	static const char *const root[] = { "/", NULL };

	memset(c, 0, sizeof *c);
	c->workers = 0;
	c->socket_mode = 0600;
	c->roots = strv_dup(root);
	c->format = strdup("default");
	c->exclude_names = strv_dup(filter_default_names);
	c->exclude_exts = strv_dup(filter_default_exts);
	c->line_max = 65536;
	c->request_max = 1 << 20;
	c->patterns_max = 1024;
	c->files_max = 100000;
	c->jobs_max = 256;
	c->connections_max = 512;
	c->idle_timeout = 60;
	c->result_ttl = 3600;
	c->result_memory = (size_t)256 << 20;
	c->worker_memory = 0;
	c->task_timeout = 0;
	c->exit_idle = 0;
	if (c->roots == NULL || c->format == NULL || c->exclude_names == NULL ||
	    c->exclude_exts == NULL)
		abort();	/* out of memory at startup */
}

void
config_free(struct config *c)
{
	free(c->file);
	free(c->socket_path);
	free(c->socket_group);
	strv_free(c->roots);
	free(c->format);
	strv_free(c->exclude_names);
	strv_free(c->exclude_exts);
	memset(c, 0, sizeof *c);
}
