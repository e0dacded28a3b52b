#if canImport(Glibc)
import Glibc
#endif

/// Work run on a thread of its own while the caller goes on; `wait()` joins
/// it. For the owner scan alongside a sock_diag dump: both mostly wait on the
/// kernel, each on its own CPU. If no thread can be started, `wait()` does
/// the work itself.
final class BackgroundWork<Result>: @unchecked Sendable {
  private let work: () -> Result
  private var result: Result?
  private var thread = pthread_t()
  private var running = false

  init(_ work: @escaping () -> Result) {
    self.work = work
    let job = Unmanaged.passRetained(ThreadJob { [self] in result = self.work() }).toOpaque()
    running = pthread_create(&thread, nil, { raw in
      Unmanaged<ThreadJob>.fromOpaque(raw!).takeRetainedValue().run()
      return nil
    }, job) == 0
    if !running { Unmanaged<ThreadJob>.fromOpaque(job).release() }
  }

  func wait() -> Result {
    if running {
      pthread_join(thread, nil)
      running = false
    }
    if let result { return result }
    let done = work()
    result = done
    return done
  }
}

/// A non-generic box: a C thread entry cannot name a generic type.
private final class ThreadJob: @unchecked Sendable {
  let run: () -> Void
  init(_ run: @escaping () -> Void) { self.run = run }
}
