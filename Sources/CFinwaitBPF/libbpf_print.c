#include <stdarg.h>
#include <stdio.h>
#include <bpf/libbpf.h>
#include "finwait_bpf.h"

static int libbpf_print_verbose(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	return vfprintf(stderr, fmt, args);
}

static int libbpf_print_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	/* finwait prints its own one-line error; libbpf's guesses (such as the
	 * RLIMIT_MEMLOCK hint on EPERM) mislead more than they help. */
	(void)level; (void)fmt; (void)args;
	return 0;
}

void fw_set_libbpf_verbose(int verbose)
{
	libbpf_set_print(verbose ? libbpf_print_verbose : libbpf_print_quiet);
}


void fw_libbpf_strerror(int err, char *buf, size_t size)
{
	libbpf_strerror(err, buf, size);
}
