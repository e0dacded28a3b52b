/* Netlink sockets (sock_diag, ctnetlink) inside another network namespace. */
#ifndef FINWAIT_DIAG_H
#define FINWAIT_DIAG_H

#include <linux/netlink.h> /* NETLINK_SOCK_DIAG, NETLINK_NETFILTER */

/* Runs fn(ctx) inside the network namespace of netns_fd (an open
 * /proc/PID/ns/net or /run/netns/NAME), or in the caller's when netns_fd < 0,
 * and returns its result (-errno when the namespace cannot be entered).
 * setns() happens on a short-lived thread of its own: the process's threads
 * stay in their namespace. What fn creates (a socket, an iterator, an open
 * file) keeps the namespace it was created in. */
int fw_in_netns(int netns_fd, int (*fn)(void *ctx), void *ctx);

/* Returns a netlink socket of protocol (NETLINK_SOCK_DIAG, NETLINK_NETFILTER,
 * ...) with a 2 s receive timeout, bound to the network namespace of
 * netns_fd (an open /proc/PID/ns/net or /run/netns/NAME), or of the caller
 * when netns_fd < 0; -errno on failure. The socket keeps its namespace, so it
 * can be used from any thread. */
int fw_netlink_socket(int netns_fd, int protocol);

/* fw_netlink_socket(netns_fd, NETLINK_SOCK_DIAG). */
int fw_diag_socket(int netns_fd);

/* Opens path read-only from inside the network namespace of netns_fd (for
 * per-namespace files such as /proc/sys/net/...); -errno on failure. */
int fw_open_in_netns(int netns_fd, const char *path);

#endif
