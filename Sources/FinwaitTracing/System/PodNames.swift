import FinwaitCore

/// Pod names by UID from the kubelet's log directories (`--pod-logs`,
/// default /var/log/pods; container names from the `containers` directory
/// beside it). Rescanned when a UID is not known, at most every
/// `rescanInterval`: a pod's directory appears when it starts, before its
/// first connection.
public final class PodNames {
  public static let defaultDirectory = "/var/log/pods"
  let podsDirectory: String
  let containersDirectory: String
  private var byUID: [PodUID: PodName] = [:]
  private var lastScan: UInt64?
  let rescanInterval: UInt64 = 10_000_000_000
  let clock: () -> UInt64

  public init(directory: String = PodNames.defaultDirectory, clock: @escaping () -> UInt64 = monotonicNow) {
    podsDirectory = directory
    var parent = directory
    while parent.count > 1 && parent.hasSuffix("/") { parent.removeLast() }
    parent = parent.lastIndex(of: "/").map { String(parent[..<$0]) } ?? "."
    containersDirectory = (parent.isEmpty ? "" : parent) + "/containers"
    self.clock = clock
  }

  public func pod(_ uid: PodUID) -> PodName? {
    if let known = byUID[uid] { return known }
    let now = clock()
    if let lastScan, now - lastScan < rescanInterval { return nil }
    lastScan = now
    rescan()
    return byUID[uid]
  }

  private func rescan() {
    var found: [PodUID: PodName] = [:]
    var byName: [String: PodUID] = [:]
    for entry in directoryEntries(podsDirectory) {
      guard let (namespace, name, uid) = PodLogs.podDirectory(entry) else { continue }
      let containers = directoryEntries(podsDirectory + "/" + entry)
      found[uid] = PodName(namespace: namespace, name: name, soleContainer: containers.count == 1 ? containers[0] : nil)
      byName[namespace + "/" + name] = uid
    }
    for entry in directoryEntries(containersDirectory) {
      guard let log = PodLogs.containerLog(entry), let uid = byName[log.namespace + "/" + log.pod] else { continue }
      found[uid]?.containers[log.id] = log.container
    }
    byUID = found
  }
}
