/// A netlink reply datagram: nlmsghdr after nlmsghdr, each padded to 4 bytes.
/// The walk shared by the sock_diag and ctnetlink parsers; every length is
/// checked before it is trusted.
enum NetlinkReply {
  static let headerLength = 16
  /// NLMSG_ERROR: an errno, or 0 for an ACK.
  static let messageError: UInt16 = 2
  /// NLMSG_DONE: the end of a dump.
  static let messageDone: UInt16 = 3

  enum Step {
    case next
    case stop
  }

  /// Calls `body` with each whole message's type, payload and offset in
  /// `data`, until it returns `.stop`. Returns the offset of the first
  /// message that does not fit in `data` (or a header cut short), or nil.
  static func forEachMessage<E: Error>(
    _ data: UnsafeRawBufferPointer,
    _ body: (_ type: UInt16, _ payload: UnsafeRawBufferPointer, _ offset: Int) throws(E) -> Step
  ) throws(E) -> Int? {
    var offset = 0
    while offset + headerLength <= data.count {
      let length = Int(data.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
      let type = data.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self).littleEndian
      guard length >= headerLength, offset + length <= data.count else { return offset }
      let payload = UnsafeRawBufferPointer(rebasing: data[(offset + headerLength)..<(offset + length)])
      if try body(type, payload, offset) == .stop { return nil }
      offset += (length + 3) & ~3
    }
    return offset >= data.count ? nil : offset
  }

  /// The errno of an NLMSG_ERROR payload (0: an ACK); nil when it is too
  /// short. The kernel sends it negative; wrapping negation keeps a garbage
  /// Int32.min from trapping.
  static func errno(ofError payload: UnsafeRawBufferPointer) -> Int32? {
    guard payload.count >= 4 else { return nil }
    return 0 &- Int32(littleEndian: payload.loadUnaligned(as: Int32.self))
  }
}
