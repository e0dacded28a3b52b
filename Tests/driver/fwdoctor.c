// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fwdoctor: sets up one TCP connection the way a `finwait doctor` verdict
 * needs it, possibly across two network namespaces, and prints the truth as
 * one JSON "ready" line once the client has sent its FIN and the server has
 * received it:
 *   {"ready":true,"scenario":..,"client_pid":..,"client_comm":"fwdclient",
 *    "server_pid":..,"server_comm":"fwdserver","client_port":..,"server_port":..,
 *    "connect_port":..}
 *
 * usage: fwdoctor SCENARIO -p PORT [-c CLIENT_NETNS] [-s SERVER_NETNS]
 *                 [-a CONNECT_ADDR] [-d CONNECT_PORT] [-b BIND_ADDR] [-l LINGER2_S] [-t MAX_S] [-F]
 * A netns is a name under /run/netns or a path. The client (this process)
 * connects to CONNECT_ADDR:CONNECT_PORT (default 127.0.0.1:PORT; another
 * address and port when a DNAT sits in between); the server (a child)
 * listens on BIND_ADDR:PORT (default 0.0.0.0), accepts one connection and
 * keeps it open. Scenarios (the client always sends the first FIN):
 *   shutdown   shutdown(SHUT_WR), socket kept: attached FIN_WAIT2
 *   halfclose  the same, and the server keeps sending data after the FIN
 *   keepalive  SO_KEEPALIVE, TCP_KEEPIDLE 1, TCP_KEEPINTVL 1, TCP_KEEPCNT 30, then shutdown(SHUT_WR)
 *   orphan     close() (TCP_LINGER2 first when -l is given): orphaned FIN_WAIT2
 * -F: TCP Fast Open: the listener takes SYN data, and the client sends 16 bytes in
 * its SYN (TCP_FASTOPEN_CONNECT). Without a cookie this needs the namespaces'
 * net.ipv4.tcp_fastopen to allow it (0x202 server side, 0x5 client side).
 * Both processes hold until SIGUSR1 or SIGTERM, or MAX_S seconds (default 120).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "fwdoctor: %s: %s\n", what, strerror(errno));
	exit(2);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL); /* a signal ends it early: the caller checks stop */
}

static void enter_netns(const char *name)
{
	char path[256];
	int fd;

	if (!name)
		return;
	snprintf(path, sizeof(path), name[0] == '/' ? "%s" : "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		die(path);
	close(fd);
}

static struct sockaddr_in ipv4(const char *addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
		fprintf(stderr, "fwdoctor: not an IPv4 address: %s\n", addr);
		exit(2);
	}
	return a;
}

/* Waits up to ms for fd to be readable; a signal only shortens the wait. */
static int readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

/* Holds until a signal or the deadline; `each` runs every 50 ms. */
static void hold(long until, int fd, void (*each)(int))
{
	while (!stop && now_ms() < until) {
		if (each)
			each(fd);
		sleep_ms(50);
	}
}

static void send_some(int fd)
{
	static const char data[64] = "the peer still sends after the FIN";

	if (send(fd, data, sizeof(data), MSG_NOSIGNAL) < 0 && errno != EAGAIN)
		die("server send");
}

static void drain(int fd)
{
	char buf[4096];

	while (readable(fd, 0) && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* The peer: accepts one connection, tells the client when the FIN arrived
 * (EOF), then keeps its socket in CLOSE_WAIT (sending, for halfclose). */
static int fast_open;
static void set_int(int fd, int level, int name, int value, const char *what);

static void server(const char *scenario, const char *netns, const char *bind_addr, int port, int ready_fd,
		   int fin_fd, long until)
{
	struct sockaddr_in a = ipv4(bind_addr, port);
	int one = 1, srv, c;
	char buf[256];
	ssize_t n;

	prctl(PR_SET_NAME, "fwdserver");
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the client */
	enter_netns(netns);
	srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv < 0)
		die("socket");
	setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(srv, (struct sockaddr *)&a, sizeof(a)) || listen(srv, 4))
		die("server bind/listen");
	if (fast_open)
		set_int(srv, IPPROTO_TCP, TCP_FASTOPEN, 4, "TCP_FASTOPEN");
	if (write(ready_fd, "l", 1) != 1)
		die("server ready");
	if (!readable(srv, 10000))
		die("no connection within 10 s");
	c = accept4(srv, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		die("accept");
	close(srv);
	while (!stop && now_ms() < until && readable(c, (int)(until - now_ms()))) {
		n = recv(c, buf, sizeof(buf), 0);
		if (n < 0)
			die("server recv");
		if (n == 0)
			break;
	}
	if (stop || now_ms() >= until)
		exit(0);
	if (write(fin_fd, "f", 1) != 1)
		die("server fin");
	hold(until, c, !strcmp(scenario, "halfclose") ? send_some : NULL);
	exit(0);
}

static int tcp_state(int fd)
{
	struct tcp_info info;
	socklen_t len = sizeof(info);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len))
		die("TCP_INFO");
	return info.tcpi_state;
}

static void set_int(int fd, int level, int name, int value, const char *what)
{
	if (setsockopt(fd, level, name, &value, sizeof(value)))
		die(what);
}

/* Reads one byte from a pipe within ms, or fails naming what did not happen. */
static void expect(int fd, int ms, const char *what)
{
	char b;

	if (!readable(fd, ms) || read(fd, &b, 1) != 1) {
		fprintf(stderr, "fwdoctor: %s within %d ms\n", what, ms);
		exit(3);
	}
}

int main(int argc, char **argv)
{
	const char *client_ns = NULL, *server_ns = NULL, *connect_addr = "127.0.0.1", *bind_addr = "0.0.0.0";
	int port = 0, connect_port = 0, linger2 = 0, max_s = 120, opt;
	int ready[2], fin[2];

	while ((opt = getopt(argc, argv, "p:c:s:a:d:b:l:t:F")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'c': client_ns = optarg; break;
		case 's': server_ns = optarg; break;
		case 'a': connect_addr = optarg; break;
		case 'd': connect_port = atoi(optarg); break;
		case 'b': bind_addr = optarg; break;
		case 'l': linger2 = atoi(optarg); break;
		case 't': max_s = atoi(optarg); break;
		case 'F': fast_open = 1; break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || port <= 0 || max_s <= 0) {
		fprintf(stderr, "usage: fwdoctor shutdown|halfclose|keepalive|orphan -p PORT [-c NETNS] [-s NETNS] "
				"[-a CONNECT_ADDR] [-d CONNECT_PORT] [-b BIND_ADDR] [-l LINGER2_S] [-t MAX_S] [-F]\n");
		return 2;
	}
	const char *scenario = argv[optind];

	if (strcmp(scenario, "shutdown") && strcmp(scenario, "halfclose") && strcmp(scenario, "keepalive") &&
	    strcmp(scenario, "orphan")) {
		fprintf(stderr, "fwdoctor: unknown scenario %s\n", scenario);
		return 2;
	}
	if (!connect_port)
		connect_port = port;
	long until = now_ms() + max_s * 1000L;
	struct sigaction sa = { .sa_handler = on_stop };

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	prctl(PR_SET_NAME, "fwdclient");
	if (pipe2(ready, O_CLOEXEC) || pipe2(fin, O_CLOEXEC))
		die("pipe");

	/* The server first, so that it owns no client socket and the client none of its. */
	pid_t server_pid = fork();

	if (server_pid < 0)
		die("fork");
	if (server_pid == 0)
		server(scenario, server_ns ? server_ns : client_ns, bind_addr, port, ready[1], fin[1], until);
	expect(ready[0], 10000, "the server did not listen");

	enter_netns(client_ns);
	struct sockaddr_in to = ipv4(connect_addr, connect_port);
	struct timeval connect_timeout = { .tv_sec = 5 };
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (c < 0)
		die("socket");
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &connect_timeout, sizeof(connect_timeout));
	if (fast_open)
		set_int(c, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, 1, "TCP_FASTOPEN_CONNECT");
	if (connect(c, (struct sockaddr *)&to, sizeof(to)))
		die("connect");
	/* With TCP_FASTOPEN_CONNECT, connect() returned at once and this rides the SYN. */
	if (fast_open && send(c, "fast open data!", 16, MSG_NOSIGNAL) != 16)
		die("send in the SYN");
	struct sockaddr_in local;
	socklen_t len = sizeof(local);

	if (getsockname(c, (struct sockaddr *)&local, &len))
		die("getsockname");

	if (!strcmp(scenario, "keepalive")) {
		set_int(c, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
		set_int(c, IPPROTO_TCP, TCP_KEEPIDLE, 1, "TCP_KEEPIDLE");
		set_int(c, IPPROTO_TCP, TCP_KEEPINTVL, 1, "TCP_KEEPINTVL");
		set_int(c, IPPROTO_TCP, TCP_KEEPCNT, 30, "TCP_KEEPCNT");
	}
	if (!strcmp(scenario, "orphan")) {
		if (linger2)
			set_int(c, IPPROTO_TCP, TCP_LINGER2, linger2, "TCP_LINGER2");
		close(c);
		c = -1;
	} else if (shutdown(c, SHUT_WR)) {
		die("shutdown");
	}
	expect(fin[0], 10000, "the server did not receive the FIN");
	if (c >= 0) {
		/* The server's kernel ACKed the FIN before its read() saw EOF; the
		 * ACK may still be on its way here. */
		long deadline = now_ms() + 5000;

		while (tcp_state(c) != TCP_FIN_WAIT2) {
			if (now_ms() > deadline) {
				fprintf(stderr, "fwdoctor: not in FIN_WAIT2 within 5 s (state %d)\n", tcp_state(c));
				return 3;
			}
			sleep_ms(1);
		}
	}
	if (!strcmp(scenario, "halfclose") && !readable(c, 5000)) {
		fprintf(stderr, "fwdoctor: no data from the server within 5 s\n");
		return 3;
	}
	printf("{\"ready\":true,\"scenario\":\"%s\",\"client_pid\":%d,\"client_comm\":\"fwdclient\","
	       "\"server_pid\":%d,\"server_comm\":\"fwdserver\",\"client_port\":%d,\"server_port\":%d,"
	       "\"connect_port\":%d}\n",
	       scenario, (int)getpid(), (int)server_pid, ntohs(local.sin_port), port, connect_port);
	fflush(stdout);
	/* The client reads what the server keeps sending, as a half-closing client would. */
	hold(until, c, c >= 0 ? drain : NULL);
	kill(server_pid, SIGTERM);
	waitpid(server_pid, NULL, 0);
	return 0;
}
