import CFinwaitEvent

/// The process that owned a socket when it sent its FIN, read in its own
/// context at ESTABLISHED -> FIN_WAIT1 (never from softirq).
public struct Owner: Sendable, Hashable {
  public var pid: UInt32
  public var tid: UInt32
  public var cgroupID: UInt64
  /// Inline bytes, not a String: owners, and the events and records that
  /// carry them, then copy as plain memory, without reference counting.
  private(set) var name: TaskName

  /// The task name (at most 15 bytes in the kernel).
  public var comm: String {
    get { name.string }
    set { name = TaskName(newValue) }
  }

  /// The name as the kernel's 16 bytes; nil if its text no longer fits.
  var kernelComm: TaskName.Comm? { name.kernelComm }

  public init(pid: UInt32, tid: UInt32, comm: String, cgroupID: UInt64) {
    self.init(pid: pid, tid: tid, name: TaskName(comm), cgroupID: cgroupID)
  }

  /// The process holding a socket, as the owners iterator reports it (its
  /// cgroup is not read: 0).
  public init(holder raw: borrowing fw_sock_owner) {
    self.init(pid: raw.tgid, tid: raw.tgid, name: TaskName(kernel: raw.comm), cgroupID: 0)
  }

  init(pid: UInt32, tid: UInt32, name: TaskName, cgroupID: UInt64) {
    self.pid = pid
    self.tid = tid
    self.name = name
    self.cgroupID = cgroupID
  }
}

/// What finwait knows of a connection on the FIN path: its identity, who
/// sent the FIN and how. Fixed once FIN_WAIT2 begins.
public struct Connection: Sendable, Equatable {
  /// The kernel's socket address: identifies the connection while it lives.
  public var socket: UInt64
  public var owner: Owner?
  public var endpoints: Endpoints
  public var path: Path
  public var syscall: Syscall
  public var syscallNumber: Int32
  public var orphanedAtEntry: Bool
  /// Network namespace inode number: the same 4-tuple can live in several.
  public var netns: UInt32
  /// `--stack`: the closer's user stack in the kernel's stack map.
  public var stackID: Int16?

  public init(
    socket: UInt64, owner: Owner?, endpoints: Endpoints, path: Path, syscall: Syscall,
    syscallNumber: Int32, orphanedAtEntry: Bool, netns: UInt32
  ) {
    self.netns = netns
    self.socket = socket
    self.owner = owner
    self.endpoints = endpoints
    self.path = path
    self.syscall = syscall
    self.syscallNumber = syscallNumber
    self.orphanedAtEntry = orphanedAtEntry
  }
}

/// One decoded ring-buffer record (`struct fw_event` in bpf/finwait.h).
/// Timestamps are CLOCK_MONOTONIC nanoseconds.
public struct Event: Sendable, Equatable {
  public enum Kind: Sendable, Equatable {
    /// An attached socket entered FIN_WAIT2.
    case enter
    /// A socket left FIN_WAIT2 as a full socket.
    case leave(End)
    /// Still in FIN_WAIT2 in the kernel map when the tracer stopped.
    case inFlight
    /// The connection's local peer closed (CLOSE_WAIT -> LAST_ACK): `peer`
    /// says who and when; `connection.owner` is not known from this record.
    case peerClose
  }

  public var kind: Kind
  public var timestamp: UInt64
  public var finWait1At: UInt64?
  public var finWait2At: UInt64?
  /// FIN_WAIT1 -> FIN_WAIT2 was not seen; `finWait2At` is the latest it can
  /// have been (from sock_diag), so a dwell measured from it is a lower bound.
  public var finWait2Inferred: Bool
  public var connection: Connection
  public var orphanedAtEnd: Bool
  /// The connection's peer on this host, if one was seen entering CLOSE_WAIT.
  public var peer: Peer?

  public init(
    kind: Kind, timestamp: UInt64, finWait1At: UInt64?, finWait2At: UInt64?,
    connection: Connection, orphanedAtEnd: Bool, peer: Peer? = nil, finWait2Inferred: Bool = false
  ) {
    self.peer = peer
    self.finWait2Inferred = finWait2Inferred
    self.kind = kind
    self.timestamp = timestamp
    self.finWait1At = finWait1At
    self.finWait2At = finWait2At
    self.connection = connection
    self.orphanedAtEnd = orphanedAtEnd
  }
}

/// Why a raw record could not be decoded.
public enum DecodeError: Error, Equatable {
  case unknownKind(UInt8)
  case unknownEnd(UInt8)
  case unknownFamily(UInt16)
}

extension Event {
  /// Decodes a record without allocating.
  public init(decoding raw: borrowing fw_event) throws(DecodeError) {
    switch UInt32(raw.kind) {
    case FW_KIND_ENTER.rawValue: kind = .enter
    case FW_KIND_IN_FLIGHT.rawValue: kind = .inFlight
    case FW_KIND_PEER_CLOSE.rawValue: kind = .peerClose
    case FW_KIND_LEAVE.rawValue:
      guard let end = End(raw: raw.end) else { throw .unknownEnd(raw.end) }
      kind = .leave(end)
    default: throw .unknownKind(raw.kind)
    }
    let flags = Int32(raw.flags)
    timestamp = raw.ts_ns
    finWait1At = raw.ts_fin_wait1_ns == 0 ? nil : raw.ts_fin_wait1_ns
    finWait2At = raw.finWait2At
    finWait2Inferred = finWait2At != nil && flags & FW_FLAG_FIN_WAIT2_INFERRED != 0
    let owner = flags & FW_FLAG_OWNER_KNOWN != 0
      ? Owner(pid: raw.tgid, tid: raw.tid, name: TaskName(kernel: raw.comm), cgroupID: raw.cgroup_id)
      : nil
    guard let endpoints = Endpoints(kernel: raw) else { throw .unknownFamily(raw.family) }
    let closeWaitSince = raw.ts_peer_close_wait_ns == 0 ? nil : raw.ts_peer_close_wait_ns
    let isPeerClose = kind == .peerClose
    connection = Connection(
      socket: raw.skaddr, owner: isPeerClose ? nil : owner, endpoints: endpoints,
      path: Path(raw: raw.path), syscall: Syscall(raw: raw.syscall), syscallNumber: Int32(raw.syscall_nr),
      orphanedAtEntry: flags & FW_FLAG_ORPHAN_AT_ENTRY != 0, netns: raw.netns)
    connection.stackID = raw.stack_id >= 0 ? raw.stack_id : nil
    orphanedAtEnd = flags & FW_FLAG_ORPHAN_AT_END != 0
    if isPeerClose {
      peer = Peer(netns: raw.peer_netns, closeWaitSince: closeWaitSince, closedAt: raw.ts_ns, owner: owner)
    } else {
      peer = Peer(seenBy: raw)
    }
  }
}

extension fw_event {
  /// When FIN_WAIT2 began, if the record (or map entry) knows.
  public var finWait2At: UInt64? {
    Int32(flags) & FW_FLAG_FIN_WAIT2_SEEN != 0 ? ts_fin_wait2_ns : nil
  }
}

extension Event {
  /// An entry of the kernel's per-socket map, as stored: its `kind` is 0
  /// until FIN_WAIT2 (not a record kind), so it decodes as IN_FLIGHT.
  public init(mapEntry raw: fw_event) throws(DecodeError) {
    var copy = raw
    copy.kind = UInt8(FW_KIND_IN_FLIGHT.rawValue)
    try self.init(decoding: copy)
  }
}

extension Endpoints {
  /// A record's endpoints; nil for a family other than AF_INET and AF_INET6.
  public init?(kernel raw: borrowing fw_event) {
    let family = raw.family
    guard let local = withUnsafeBytes(of: raw.saddr, { IPAddress(family: family, networkOrder: $0) }),
      let remote = withUnsafeBytes(of: raw.daddr, { IPAddress(family: family, networkOrder: $0) })
    else { return nil }
    self.init(local: local, localPort: raw.sport, remote: remote, remotePort: raw.dport)
  }
}

extension Peer {
  /// What a traced connection's own record knows of its local peer: when it
  /// entered CLOSE_WAIT. nil if none was seen.
  init?(seenBy raw: borrowing fw_event) {
    guard raw.ts_peer_close_wait_ns != 0 else { return nil }
    self.init(netns: raw.peer_netns, closeWaitSince: raw.ts_peer_close_wait_ns)
  }
}

/// A task name's UTF-8, inline. The kernel's comm is 16 bytes; 48 hold it
/// even when every byte is invalid UTF-8 and becomes U+FFFD (3 bytes).
struct TaskName: Sendable, Hashable {
  static let capacity = 48
  typealias Comm = (CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar,
                    CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar)

  /// Zero past `count`, so equal names have equal words.
  private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
  private var count: UInt8 = 0

  /// A longer string (no task name is) is cut at a character boundary.
  init(_ string: String) {
    var string = string
    var words = self.words
    count = string.withUTF8 { utf8 in
      var end = min(utf8.count, Self.capacity)
      if end < utf8.count {
        while end > 0 && utf8[end] & 0xC0 == 0x80 { end -= 1 }  // not inside a scalar
      }
      withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[..<end])) }
      return UInt8(end)
    }
    self.words = words
  }

  /// The kernel's NUL-terminated (or full) comm. ASCII, by far the usual
  /// case, is copied word by word; anything else is decoded as before.
  init(kernel comm: Comm) {
    let (low, high) = withUnsafeBytes(of: comm) {
      (UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
       UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }
    let length: Int
    if let i = Self.firstZeroByte(low) {
      length = i
    } else if let i = Self.firstZeroByte(high) {
      length = 8 + i
    } else {
      length = 16
    }
    let lowMask = Self.mask(bytes: min(length, 8))
    let highMask = Self.mask(bytes: max(length - 8, 0))
    if (low & lowMask | high & highMask) & 0x8080_8080_8080_8080 == 0 {
      self.init(ascii: (low & lowMask, high & highMask), count: length)
      return
    }
    self.init(withUnsafeBytes(of: comm) { String(decoding: UnsafeRawBufferPointer(rebasing: $0[..<length]), as: UTF8.self) })
  }

  private init(ascii littleEndian: (UInt64, UInt64), count: Int) {
    words.0 = littleEndian.0.littleEndian
    words.1 = littleEndian.1.littleEndian
    self.count = UInt8(count)
  }

  /// NUL-padded, as the kernel keeps it; nil past 16 bytes.
  var kernelComm: Comm? {
    // The kernel's name ends at its first NUL: one inside would not come back.
    guard count <= 16, !withUnsafeBytes(of: words, { $0[..<Int(count)].contains(0) }) else { return nil }
    var comm: Comm = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &comm) { out in
      withUnsafeBytes(of: words) { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<16])) }
    }
    return comm
  }

  var string: String {
    withUnsafeBytes(of: words) { String(decoding: UnsafeRawBufferPointer(rebasing: $0[..<Int(count)]), as: UTF8.self) }
  }

  static func == (a: TaskName, b: TaskName) -> Bool {
    a.count == b.count && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
      && a.words.3 == b.words.3 && a.words.4 == b.words.4 && a.words.5 == b.words.5
  }

  func hash(into hasher: inout Hasher) {
    withUnsafeBytes(of: words) { hasher.combine(bytes: UnsafeRawBufferPointer(rebasing: $0[..<Int(count)])) }
  }

  /// Index of the lowest zero byte of a little-endian word, if any.
  private static func firstZeroByte(_ v: UInt64) -> Int? {
    let flagged = (v &- 0x0101_0101_0101_0101) & ~v & 0x8080_8080_8080_8080
    return flagged == 0 ? nil : flagged.trailingZeroBitCount / 8
  }

  private static func mask(bytes: Int) -> UInt64 {
    bytes >= 8 ? ~0 : (1 << UInt64(bytes * 8)) &- 1
  }
}
