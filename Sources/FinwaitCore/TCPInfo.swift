/// What the doctor reads of `struct tcp_info` (linux/tcp.h), the INET_DIAG_INFO
/// attribute of a sock_diag reply. The kernel sends as many bytes as it knows;
/// an older kernel's shorter struct leaves the later fields nil.
public struct TCPInfo: Sendable, Equatable {
  /// TCPI_OPT_* bits of `tcpi_options`: what the handshake negotiated.
  public struct Options: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let timestamps = Options(rawValue: 1)
    public static let sack = Options(rawValue: 2)
    public static let windowScaling = Options(rawValue: 4)
    public static let ecn = Options(rawValue: 8)
    public static let ecnSeen = Options(rawValue: 16)
    /// TCPI_OPT_SYN_DATA: data in the SYN was acknowledged (TCP Fast Open).
    public static let synData = Options(rawValue: 32)
  }

  public var options: Options
  /// tcpi_snd_wscale / tcpi_rcv_wscale (meaningful with `.windowScaling`).
  public var sendWindowScale: UInt8
  public var receiveWindowScale: UInt8
  /// icsk_retransmits: retransmissions of the segment now timing out.
  public var retransmits: UInt8
  /// icsk_probes_out: keepalive or zero-window probes sent and not answered.
  public var probes: UInt8
  public var backoff: UInt8
  public var rtoMicroseconds: UInt32
  public var lastDataSentMilliseconds: UInt32
  public var lastDataReceivedMilliseconds: UInt32
  public var lastAckReceivedMilliseconds: UInt32
  public var rttMicroseconds: UInt32
  /// Every retransmission over the connection's life.
  public var totalRetransmits: UInt32
  /// nil before Linux 4.1 (the struct ended earlier).
  public var bytesReceived: UInt64?

  public init(
    options: Options = [], sendWindowScale: UInt8 = 0, receiveWindowScale: UInt8 = 0, retransmits: UInt8 = 0,
    probes: UInt8 = 0, backoff: UInt8 = 0, rtoMicroseconds: UInt32 = 0, lastDataSentMilliseconds: UInt32 = 0,
    lastDataReceivedMilliseconds: UInt32 = 0, lastAckReceivedMilliseconds: UInt32 = 0, rttMicroseconds: UInt32 = 0,
    totalRetransmits: UInt32 = 0, bytesReceived: UInt64? = nil
  ) {
    self.options = options
    self.sendWindowScale = sendWindowScale
    self.receiveWindowScale = receiveWindowScale
    self.retransmits = retransmits
    self.probes = probes
    self.backoff = backoff
    self.rtoMicroseconds = rtoMicroseconds
    self.lastDataSentMilliseconds = lastDataSentMilliseconds
    self.lastDataReceivedMilliseconds = lastDataReceivedMilliseconds
    self.lastAckReceivedMilliseconds = lastAckReceivedMilliseconds
    self.rttMicroseconds = rttMicroseconds
    self.totalRetransmits = totalRetransmits
    self.bytesReceived = bytesReceived
  }

  /// Byte offsets in struct tcp_info (linux/tcp.h), stable since the fields were added.
  enum Offset {
    static let retransmits = 2, probes = 3, backoff = 4, options = 5, windowScales = 6
    static let rto = 8
    static let lastDataSent = 44, lastDataReceived = 52, lastAckReceived = 56
    static let rtt = 68
    static let totalRetransmits = 100
    static let bytesReceived = 128
  }

  /// The shortest tcp_info worth reading: up to tcpi_total_retrans (Linux 2.6.x).
  public static let minimumLength = Offset.totalRetransmits + 4

  /// Decodes the attribute's payload; nil when it is shorter than `minimumLength`.
  public init?(_ raw: UnsafeRawBufferPointer) {
    guard raw.count >= Self.minimumLength else { return nil }
    func u32(_ at: Int) -> UInt32 { raw.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian }
    let scales = raw[Offset.windowScales]
    self.init(
      options: Options(rawValue: raw[Offset.options]),
      // Bitfields `snd_wscale : 4, rcv_wscale : 4`: the first is the low nibble (little endian).
      sendWindowScale: scales & 0x0f, receiveWindowScale: scales >> 4,
      retransmits: raw[Offset.retransmits], probes: raw[Offset.probes], backoff: raw[Offset.backoff],
      rtoMicroseconds: u32(Offset.rto), lastDataSentMilliseconds: u32(Offset.lastDataSent),
      lastDataReceivedMilliseconds: u32(Offset.lastDataReceived),
      lastAckReceivedMilliseconds: u32(Offset.lastAckReceived), rttMicroseconds: u32(Offset.rtt),
      totalRetransmits: u32(Offset.totalRetransmits),
      bytesReceived: raw.count >= Offset.bytesReceived + 8
        ? raw.loadUnaligned(fromByteOffset: Offset.bytesReceived, as: UInt64.self).littleEndian : nil)
  }

  /// The inverse of `init(_:)`, `length` bytes long (at least `minimumLength`):
  /// what a kernel of that struct size would send. For tests and fixtures.
  public func encoded(length: Int = 232) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: max(length, Self.minimumLength))
    bytes.withUnsafeMutableBytes { raw in
      func put(_ v: UInt32, _ at: Int) { raw.storeBytes(of: v.littleEndian, toByteOffset: at, as: UInt32.self) }
      raw[Offset.retransmits] = retransmits
      raw[Offset.probes] = probes
      raw[Offset.backoff] = backoff
      raw[Offset.options] = options.rawValue
      raw[Offset.windowScales] = (sendWindowScale & 0x0f) | (receiveWindowScale << 4)
      put(rtoMicroseconds, Offset.rto)
      put(lastDataSentMilliseconds, Offset.lastDataSent)
      put(lastDataReceivedMilliseconds, Offset.lastDataReceived)
      put(lastAckReceivedMilliseconds, Offset.lastAckReceived)
      put(rttMicroseconds, Offset.rtt)
      put(totalRetransmits, Offset.totalRetransmits)
      if let bytesReceived, raw.count >= Offset.bytesReceived + 8 {
        raw.storeBytes(of: bytesReceived.littleEndian, toByteOffset: Offset.bytesReceived, as: UInt64.self)
      }
    }
    return bytes
  }

  /// Fast Open: data rode on the SYN and was acknowledged.
  public var fastOpen: Bool { options.contains(.synData) }
}
