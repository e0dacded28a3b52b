/// Pod and container names from the kubelet's log directories, readable on
/// the node itself without API access:
/// `/var/log/pods/<namespace>_<pod>_<uid>/<container>/` and the symlinks
/// `/var/log/containers/<pod>_<namespace>_<container>-<container id>.log`.
/// Kubernetes names (DNS labels and subdomains) hold no `_`, so the
/// separators are unambiguous.
public enum PodLogs {
  /// `kube-system_coredns-5d78c9869d-abcde_0f1e2d3c-...`: namespace, pod name, UID.
  public static func podDirectory(_ name: String) -> (namespace: String, pod: String, uid: PodUID)? {
    let parts = name.split(separator: "_", omittingEmptySubsequences: false)
    guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, let uid = PodUID(parts[2]) else { return nil }
    return (String(parts[0]), String(parts[1]), uid)
  }

  /// `coredns-abc_kube-system_coredns-<64 hex>.log`: pod, namespace,
  /// container name and id.
  public static func containerLog(_ name: String) -> (pod: String, namespace: String, container: String, id: String)? {
    guard name.hasSuffix(".log") else { return nil }
    let stem = name.dropLast(4)
    let parts = stem.split(separator: "_", omittingEmptySubsequences: false)
    guard parts.count == 3, let dash = parts[2].lastIndex(of: "-") else { return nil }
    let container = parts[2][..<dash]
    let id = parts[2][parts[2].index(after: dash)...]
    guard !container.isEmpty, ContainerID(id) != nil else { return nil }
    return (String(parts[0]), String(parts[1]), String(container), String(id))
  }
}
