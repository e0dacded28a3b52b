#!/usr/bin/python3
"""Checks deploy/ files against each other (make deploy-check); no root.

- The PrometheusRule's spec.groups in deploy/kubernetes/finwait.yaml equals the
  groups of deploy/prometheus/finwait-rules.yml: one definition, checked twice
  (promtool runs on the plain file).
- The PodMonitor selects the DaemonSet's pods and scrapes a port they declare,
  and names the job "finwait" as the rules expect (kubernetes-validate has no
  schema for the Prometheus Operator's kinds).
- The DaemonSet's seccomp profile and added capabilities are the documented
  ones, and deploy/seccomp.json allows the calls finwait cannot do without.

Usage: check-manifests.py MANIFEST RULES SECCOMP
"""
import json
import sys

import yaml

# CAP_BPF + CAP_PERFMON required; the rest optional (docs/deploy.md).
CAPABILITIES = {"BPF", "PERFMON", "SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"}
REQUIRED_SYSCALLS = {"bpf", "perf_event_open", "setns", "open_by_handle_at",
                     "epoll_wait", "eventfd2", "timerfd_create", "accept4",
                     "socket", "bind", "listen", "sendmsg", "recvmsg",
                     "clone3", "futex", "mmap"}

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def main(manifest, rules, seccomp):
    docs = [d for d in yaml.safe_load_all(open(manifest)) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for kind in ("Namespace", "ServiceAccount", "DaemonSet", "PodMonitor", "PrometheusRule"):
        check(len(by_kind.get(kind, [])) == 1, f"{manifest}: expected one {kind}")
    if failures:
        return

    plain = yaml.safe_load(open(rules))
    rule = by_kind["PrometheusRule"][0]
    check(rule["spec"]["groups"] == plain["groups"],
          f"PrometheusRule spec.groups in {manifest} differs from the groups of {rules}")

    ds = by_kind["DaemonSet"][0]
    pod = ds["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    pm = by_kind["PodMonitor"][0]
    selector = pm["spec"]["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in selector.items()),
          f"PodMonitor selector {selector} does not match the DaemonSet's pod labels {labels}")
    for ep in pm["spec"]["podMetricsEndpoints"]:
        check(ep.get("port") in ports, f"PodMonitor scrapes port {ep.get('port')!r}, not declared by the pod")
        check(ep.get("path", "/metrics") == "/metrics", "PodMonitor path is not /metrics")
    job_label = pm["spec"].get("jobLabel")
    check(job_label is not None and labels.get(job_label) == "finwait",
          "PodMonitor jobLabel must name a pod label whose value is 'finwait' (the rules use job=\"finwait\")")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") in ports,
              f"{probe} must GET {path} on a declared port")

    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    check(namespaces == {by_kind["Namespace"][0]["metadata"]["name"]},
          f"every object must be in the manifest's Namespace, found {namespaces}")
    sa = by_kind["ServiceAccount"][0]
    check(sa.get("automountServiceAccountToken") is False, "the ServiceAccount must not mount a token")
    check(pod["spec"].get("serviceAccountName") == sa["metadata"]["name"], "the pods must use the ServiceAccount")

    sc = container["securityContext"]
    caps = sc["capabilities"]
    check(caps.get("drop") == ["ALL"], "capabilities.drop must be [ALL]")
    check(set(caps.get("add", [])) == CAPABILITIES,
          f"capabilities.add must be {sorted(CAPABILITIES)}, is {caps.get('add')}")
    check(not any(c.startswith("CAP_") for c in caps.get("add", [])),
          "spell capabilities without CAP_ (the API refuses CAP_SYS_ADMIN with allowPrivilegeEscalation: false)")
    check(sc.get("seccompProfile") == {"type": "Localhost", "localhostProfile": "finwait.json"},
          "seccompProfile must be Localhost finwait.json")
    check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
          and sc.get("privileged") is False, "readOnlyRootFilesystem, allowPrivilegeEscalation, privileged")
    check(pod["spec"].get("hostPID") is True and not pod["spec"].get("hostNetwork"),
          "hostPID: true and no hostNetwork")
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    for path in ("/sys/kernel/btf", "/sys/fs/cgroup", "/var/log/pods"):
        check(path in mounts and mounts[path].get("readOnly") is True, f"{path} must be mounted read-only")

    profile = json.load(open(seccomp))
    check(profile.get("defaultAction") == "SCMP_ACT_ERRNO", f"{seccomp}: defaultAction must be SCMP_ACT_ERRNO")
    allowed = [n for s in profile["syscalls"] if s["action"] == "SCMP_ACT_ALLOW" for n in s["names"]]
    check(len(allowed) == len(set(allowed)), f"{seccomp}: a call is listed twice")
    missing = REQUIRED_SYSCALLS - set(allowed)
    check(not missing, f"{seccomp}: does not allow {sorted(missing)}")
    check(all(s["action"] == "SCMP_ACT_ALLOW" and set(s) <= {"names", "action"} for s in profile["syscalls"]),
          f"{seccomp}: only plain allow entries are expected")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
    for f in failures:
        print(f"check-manifests: {f}", file=sys.stderr)
    if failures:
        sys.exit(1)
    print("check-manifests: PrometheusRule == rules file; PodMonitor, DaemonSet and seccomp profile consistent")
