#!/usr/bin/env python3
"""Holds one loopback connection in FIN_WAIT2 and checks that `finwait serve`
counts it on /metrics: attached in the gauge, stuck, then its dwell in the
histogram once the peer closes. Used by deploy/check-image.sh.

Usage: check-metrics.py PORT LISTEN_ADDR
"""
import re
import socket
import sys
import time
import urllib.request

port, listen = int(sys.argv[1]), sys.argv[2]
owner = 'namespace="",pod="",container="",comm="python3"'


def metrics():
    return urllib.request.urlopen(f"http://{listen}/metrics", timeout=5).read().decode()


def value(text, series):
    m = re.search(r"^" + re.escape(series) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def wait_for(what, check):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = metrics()
        if check(text):
            return text
        time.sleep(0.2)
    sys.exit(f"image-check: {what} not seen on /metrics:\n{metrics()}")


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(1)
c = socket.create_connection(ls.getsockname())
s, _ = ls.accept()
c.shutdown(socket.SHUT_WR)
wait_for("the attached socket in the gauge",
         lambda t: value(t, f'finwait_fin_wait2_sockets{{state="attached",{owner}}}') == 1)
wait_for("the stuck socket", lambda t: value(t, f"finwait_fin_wait2_stuck_sockets{{{owner}}}") == 1)
s.close()
time.sleep(0.1)
c.close()
ended = 'path="shutdown_wr",end="peer_fin"'
text = wait_for("the dwell in the histogram",
                lambda t: value(t, f"finwait_fin_wait2_duration_seconds_count{{{ended}}}") == 1)
print("image-check: /metrics counted the held socket (gauge, stuck) and its dwell of",
      value(text, f"finwait_fin_wait2_duration_seconds_sum{{{ended}}}"), "s")
