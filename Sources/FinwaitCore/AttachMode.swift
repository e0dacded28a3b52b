/// The program that follows sock:inet_sock_set_state. Both run the same
/// handlers (bpf/finwait.bpf.c); they differ in what the kernel must offer.
public enum AttachProgram: String, Sendable, Equatable {
  /// `tp_btf/inet_sock_set_state`: the socket is a BTF pointer, read with
  /// direct loads (the faster one). Needs the kernel's own BTF.
  case tpBTF = "tp_btf"
  /// `tracepoint/sock/inet_sock_set_state`: the socket is a plain address,
  /// read with probe reads. Needs tracefs, not the kernel's own BTF.
  case tracepoint
}

/// `--attach`: which program to use, or `auto` to let probes decide.
public enum AttachMode: String, CaseIterable, Sendable, Equatable {
  case auto
  case tpBTF = "tp_btf"
  case tracepoint

  /// The program to load first, given whether the kernel's BTF has the type a
  /// tp_btf program resolves its target with; nil when tp_btf is forced and
  /// the kernel has no such BTF.
  public func first(tpBTFAvailable: Bool) -> AttachProgram? {
    switch self {
    case .auto: tpBTFAvailable ? .tpBTF : .tracepoint
    case .tpBTF: tpBTFAvailable ? .tpBTF : nil
    case .tracepoint: .tracepoint
    }
  }

  /// The program to try after `failed` would not load or attach: only `auto`
  /// falls back, from tp_btf to the classic tracepoint. A forced mode fails
  /// as it is.
  public func next(after failed: AttachProgram) -> AttachProgram? {
    self == .auto && failed == .tpBTF ? .tracepoint : nil
  }
}
