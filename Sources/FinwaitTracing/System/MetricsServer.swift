import FinwaitCore
import SystemPackage
import NIOCore
import NIOHTTP1
import NIOPosix

/// What `/metrics`, `/healthz` and `/readyz` answer. The tracing loop updates
/// it; the HTTP thread reads it, so it must be thread-safe.
public protocol MetricsEndpoint: AnyObject, Sendable {
  /// Attached and tracing (`/readyz`).
  var isReady: Bool { get }
  /// The exposition, in Prometheus text or OpenMetrics.
  func exposition(openMetrics: Bool) -> [UInt8]
}

/// One HTTP/1.1 exchange per request: GET (or HEAD) of the three paths.
/// Tested without a network through NIO's EmbeddedChannel.
public final class MetricsHTTPHandler: ChannelInboundHandler {
  public typealias InboundIn = HTTPServerRequestPart
  public typealias OutboundOut = HTTPServerResponsePart

  private let endpoint: any MetricsEndpoint
  private var request: HTTPRequestHead?

  public init(endpoint: any MetricsEndpoint) {
    self.endpoint = endpoint
  }

  public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case let .head(head): request = head
    case .body: break  // no route takes a body
    case .end:
      guard let head = request else { return }
      request = nil
      respond(to: head, context: context)
    }
  }

  private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
    let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
    var status = HTTPResponseStatus.ok
    var contentType = "text/plain; charset=utf-8"
    var body: [UInt8]
    var headers = HTTPHeaders()
    if head.method != .GET && head.method != .HEAD {
      status = .methodNotAllowed
      headers.add(name: "Allow", value: "GET, HEAD")
      body = Array("only GET and HEAD\n".utf8)
    } else {
      switch path {
      case "/metrics":
        let openMetrics = Exposition.prefersOpenMetrics(accept: head.headers.first(name: "Accept"))
        contentType = openMetrics ? Exposition.openMetricsContentType : Exposition.textContentType
        body = endpoint.exposition(openMetrics: openMetrics)
      case "/healthz":
        body = Array("ok\n".utf8)
      case "/readyz":
        let ready = endpoint.isReady
        status = ready ? .ok : .serviceUnavailable
        body = Array((ready ? "ready\n" : "not attached yet\n").utf8)
      case "/":
        body = Array("finwait: /metrics /healthz /readyz\n".utf8)
      default:
        status = .notFound
        body = Array("not found; try /metrics\n".utf8)
      }
    }
    let keepAlive = head.isKeepAlive
    headers.add(name: "Content-Type", value: contentType)
    headers.add(name: "Content-Length", value: String(body.count))
    if !keepAlive { headers.add(name: "Connection", value: "close") }
    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
    if head.method != .HEAD {
      context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
    }
    let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
    if !keepAlive {
      let channel = context.channel
      done.whenComplete { _ in channel.close(promise: nil) }
    }
  }

  public func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }
}

/// The listener of `finwait serve`: one event-loop thread, beside the tracing
/// loop's. Binding happens before the BPF program is attached, so a bad
/// address or a port in use fails fast with one line.
public final class MetricsServer {
  private let group: MultiThreadedEventLoopGroup
  private let channel: any Channel
  public let address: ListenAddress

  public init(listen: ListenAddress, endpoint: any MetricsEndpoint) throws(FinwaitError) {
    let socketAddress: SocketAddress
    do {
      socketAddress = try SocketAddress(ipAddress: listen.host, port: Int(listen.port))
    } catch {
      throw .invalidArgument("--listen \(listen): not a numeric IP address and port")
    }
    group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 64)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(endpoint: endpoint))
        }
      }
      .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
    do {
      channel = try bootstrap.bind(to: socketAddress).wait()
    } catch {
      try? group.syncShutdownGracefully()
      let errno = (error as? IOError).map { Errno(rawValue: $0.errnoCode) } ?? .invalidArgument
      throw .listen(address: listen.description, errno: errno)
    }
    var bound = listen
    if let port = channel.localAddress?.port { bound.port = UInt16(port) }
    address = bound
  }

  /// Stops listening and waits for the thread.
  public func shutdown() {
    try? channel.close().wait()
    try? group.syncShutdownGracefully()
  }
}
