import FinwaitCore
import XCTest

private func bytes(hex: String) -> [UInt8] {
  let digits = Array(hex.utf8)
  return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
}

private func parse(_ bytes: [UInt8]) throws -> ConntrackEntry? {
  try bytes.withUnsafeBytes { try ConntrackMessages.parse($0) }
}

private func parseError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> ConntrackMessages.ParseError? {
  do {
    let entry = try parse(bytes)
    XCTFail("parsed to \(String(describing: entry))", file: file, line: line)
    return nil
  } catch let error as ConntrackMessages.ParseError {
    return error
  } catch {
    XCTFail("untyped error \(error)", file: file, line: line)
    return nil
  }
}

/// Captured on this machine (Linux 6.18) in a network namespace with an nft
/// `nat output` rule DNATing 10.96.0.10:80 to 10.244.0.5:8080, after the
/// client 10.244.0.5:43928 connected to 10.96.0.10:80 and shut down its side
/// and the backend had read that FIN (the entry was still in FIN_WAIT: the
/// backend's ACK had not gone through conntrack yet): a Python AF_NETLINK/NETLINK_NETFILTER
/// socket sent the IPCTNL_MSG_CT_GET by original tuple below (sequence 7)
/// and printed what recv() returned, in hex.
private let capturedRequest = bytes(hex:
  "48000000010101000700000000000000020000003400018014000180080001000af40005080002000a60000a1c0002800500010006000000"
  + "06000200ab9800000600030000500000")
private let capturedReply = bytes(hex:
  "d400000000010200070000007d330000020000003400018014000180080001000af40005080002000a60000a1c0002800500010006000000"
  + "06000200ab98000006000300005000003400028014000180080001000af40005080002000af400051c0002800500010006000000060002"
  + "001f90000006000300ab98000008000300000001ae080008000000000008000c00960824bb08000b000000000208000700000000783000"
  + "04802c0001800500010004000000050002000a000000050003000a00000006000400370000000600050023000000")
/// The same session's answer to a GET of 10.244.0.5:1 -> 10.96.0.10:80 (no such entry).
private let capturedNoEntry = bytes(hex:
  "5c00000002000000070000007d330000feffffff48000000010101000700000000000000020000003400018014000180080001000af40005"
  + "080002000a60000a1c000280050001000600000006000200000100000600030000500000")

final class ConntrackMessagesTests: XCTestCase {
  let client = Endpoints(local: .v4(10, 244, 0, 5), localPort: 43928, remote: .v4(10, 96, 0, 10), remotePort: 80)
  let server = Endpoints(local: .v4(10, 244, 0, 5), localPort: 8080, remote: .v4(10, 244, 0, 5), remotePort: 43928)

  func testIPv4RequestIsTheOneTheKernelAnswered() {
    XCTAssertEqual(ConntrackMessages.getRequest(client, direction: .original, sequence: 7), capturedRequest)
  }

  func testIPv4RequestByReplyTupleOnlyChangesTheOuterAttribute() {
    var expected = capturedRequest
    expected[22] = 2  // CTA_TUPLE_REPLY instead of CTA_TUPLE_ORIG (NLA_F_NESTED kept in byte 23)
    XCTAssertEqual(ConntrackMessages.getRequest(client, direction: .reply, sequence: 7), expected)
  }

  func testIPv6RequestBytes() {
    let tuple = Endpoints(
      local: .v6(high: 0x2001_0db8_0000_0000, low: 1), localPort: 0xa1b2,
      remote: .v6(high: 0xfd00_0000_0000_0000, low: 0x10), remotePort: 443)
    let expected: [UInt8] =
      [96, 0, 0, 0, 0x01, 0x01, 0x01, 0x00, 9, 0, 0, 0, 0, 0, 0, 0]  // nlmsghdr: 96 bytes, CT_GET, NLM_F_REQUEST, seq 9
      + [10, 0, 0, 0]  // nfgenmsg: AF_INET6, NFNETLINK_V0, res_id 0
      + [76, 0, 0x02, 0x80]  // CTA_TUPLE_REPLY | NLA_F_NESTED
      + [44, 0, 0x01, 0x80]  // CTA_TUPLE_IP | NLA_F_NESTED
      + [20, 0, 3, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]  // CTA_IP_V6_SRC
      + [20, 0, 4, 0, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]  // CTA_IP_V6_DST
      + [28, 0, 0x02, 0x80]  // CTA_TUPLE_PROTO | NLA_F_NESTED
      + [5, 0, 1, 0, 6, 0, 0, 0]  // CTA_PROTO_NUM: IPPROTO_TCP, padded
      + [6, 0, 2, 0, 0xa1, 0xb2, 0, 0]  // CTA_PROTO_SRC_PORT, big endian
      + [6, 0, 3, 0, 0x01, 0xbb, 0, 0]  // CTA_PROTO_DST_PORT 443
    XCTAssertEqual(ConntrackMessages.getRequest(tuple, direction: .reply, sequence: 9), expected)
  }

  func testCapturedReplyOfADNATedConnection() throws {
    let entry = try XCTUnwrap(parse(capturedReply))
    XCTAssertEqual(entry.original, client)
    XCTAssertEqual(entry.reply, server)
    XCTAssertEqual(entry.state, .finWait)
    XCTAssertEqual(entry.state?.name, "FIN_WAIT")
    XCTAssertEqual(entry.timeoutSeconds, 120)
    // SEEN_REPLY | ASSURED | CONFIRMED | DST_NAT | SRC_NAT_DONE | DST_NAT_DONE
    XCTAssertEqual(entry.status, 0x1ae)
    XCTAssertTrue(entry.isDNAT)
    XCTAssertFalse(entry.isSNAT)
    XCTAssertEqual(entry.id, 0x9608_24bb)
    XCTAssertNil(entry.zone, "the default zone is not sent")
  }

  func testENOENTIsNoEntry() throws {
    XCTAssertNil(try parse(capturedNoEntry))
  }

  func testOtherKernelErrorsAreTyped() {
    // What a GET without CAP_NET_ADMIN gets: NLMSG_ERROR -1 (EPERM).
    let eperm = bytes(hex: "280000000200000001000000b3330000ffffffff1400000001010100010000000000000002000000")
    XCTAssertEqual(parseError(eperm), .kernel(errno: 1))
  }

  func testTruncationsAndGarbageGiveTypedErrors() {
    XCTAssertEqual(parseError([]), .noAnswer)
    // Every cut inside the message: its nlmsg_len no longer fits.
    for cut in 16..<capturedReply.count {
      XCTAssertEqual(parseError(Array(capturedReply[..<cut])), .truncated(offset: 0), "cut at \(cut)")
    }
    // A header that is not whole is trailing garbage.
    XCTAssertEqual(parseError(Array(capturedReply[..<10])), .truncated(offset: 0))
    // nlmsg_len kept, an attribute's length pointing past the message.
    var longAttribute = capturedReply
    longAttribute[20] = 0xff  // CTA_TUPLE_ORIG's nla_len
    XCTAssertEqual(parseError(longAttribute), .truncated(offset: 20))
    // An attribute shorter than its header.
    var shortAttribute = capturedReply
    shortAttribute[20] = 3
    XCTAssertEqual(parseError(shortAttribute), .truncated(offset: 20))
    // CTA_IP_V4_SRC with 3 bytes instead of 4 (its length byte at 28).
    var badAddress = capturedReply
    badAddress[28] = 7
    XCTAssertEqual(parseError(badAddress), .malformed(offset: 28))
    // No CTA_TUPLE_REPLY: CTA_TUPLE_ORIG's type where the reply tuple's is.
    var missingReply = capturedReply
    missingReply[74] = 1
    XCTAssertEqual(parseError(missingReply), .malformed(offset: 0))
    // NLMSG_DONE without an entry.
    XCTAssertEqual(parseError([20, 0, 0, 0, 3, 0, 2, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), .noAnswer)
  }

  func testAnACKBeforeTheEntryIsSkipped() throws {
    let ack: [UInt8] = [20, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    XCTAssertEqual(try parse(ack + capturedReply)?.reply, server)
  }

  func testPeerEndpoints() throws {
    let entry = try XCTUnwrap(parse(capturedReply))
    // The client sees the service IP; its peer is the backend's socket.
    XCTAssertEqual(entry.peerEndpoints(of: client), server)
    XCTAssertEqual(entry.peerEndpoints(of: server), client)
    // Reversing the client's view (what works without a NAT) names no socket here.
    let reversed = Endpoints(local: client.remote, localPort: client.remotePort, remote: client.local, remotePort: client.localPort)
    XCTAssertNil(entry.peerEndpoints(of: reversed))
  }

  func testStateNumbersAndNamesFollowTheKernel() {
    XCTAssertEqual(ConntrackTCPState(rawValue: 0)?.name, "NONE")
    XCTAssertEqual(ConntrackTCPState(rawValue: 3)?.name, "ESTABLISHED")
    XCTAssertEqual(ConntrackTCPState(rawValue: 7)?.name, "TIME_WAIT")
    XCTAssertEqual(ConntrackTCPState(rawValue: 9)?.name, "SYN_SENT2")
    XCTAssertNil(ConntrackTCPState(rawValue: 10), "TCP_CONNTRACK_MAX is not a state")
  }
}
