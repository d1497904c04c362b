import CSystemMemory
import ServiceLifecycle
import Synchronization

/// Whether the collector should receive traffic: storage is open, the HTTP and UDP listeners are
/// bound, and shutdown has not begun. Read by `/-/ready`.
///
/// Thread-safety: lock-free; any task may read or update it.
public final class ServiceReadiness: Sendable {
    /// A part that must be up before the collector is ready.
    public enum Component: Int, CaseIterable, Sendable {
        case storage = 1
        case http = 2
        case udp = 4
    }

    private static let stoppingBit = 1 << 16
    private let state = Atomic<Int>(0)
    private let required: Int
    /// Tasks waiting for a component, resumed by `markUp`.
    private let waiters = Mutex<[(component: Int, continuation: CheckedContinuation<Void, Never>)]>([])

    /// - Parameter required: the components that must report up; all by default.
    public init(required: [Component] = Component.allCases) {
        self.required = required.reduce(0) { $0 | $1.rawValue }
    }

    /// Records that `component` is up.
    public func markUp(_ component: Component) {
        // A listener is bound now: its socket must not outlive the process in a child (the
        // crash helper), or a restart finds the port taken.
        if component != .storage { _ = fb_mark_sockets_close_on_exec() }
        state.bitwiseOr(component.rawValue, ordering: .releasing)
        let ready = waiters.withLock { waiters in
            let ready = waiters.filter { $0.component == component.rawValue }
            waiters.removeAll { $0.component == component.rawValue }
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    /// Returns once `component` is up (at once if it already is).
    public func waitUntilUp(_ component: Component) async {
        await withCheckedContinuation { continuation in
            let already = waiters.withLock { waiters in
                // Checked under the lock that `markUp` takes after setting the bit: no lost wake-up.
                if state.load(ordering: .acquiring) & component.rawValue != 0 { return true }
                waiters.append((component.rawValue, continuation))
                return false
            }
            if already { continuation.resume() }
        }
    }

    /// Records that shutdown has begun; readiness never comes back.
    public func markStopping() {
        state.bitwiseOr(ServiceReadiness.stoppingBit, ordering: .releasing)
    }

    /// Whether every required component is up and shutdown has not begun.
    public var isReady: Bool {
        let value = state.load(ordering: .acquiring)
        return value & ServiceReadiness.stoppingBit == 0 && value & required == required
    }

    /// Whether shutdown has begun.
    public var isStopping: Bool {
        state.load(ordering: .acquiring) & ServiceReadiness.stoppingBit != 0
    }
}

/// Flips ``ServiceReadiness`` to "stopping" as soon as graceful shutdown begins.
///
/// Place it last in the `ServiceGroup`: services shut down in reverse order, so `/-/ready`
/// answers 503 before the HTTP server stops accepting connections.
public struct ReadinessService: Service {
    private let readiness: ServiceReadiness

    /// A `ReadinessService` from its parts.
    public init(readiness: ServiceReadiness) {
        self.readiness = readiness
    }

    public func run() async throws {
        try? await gracefulShutdown()
        readiness.markStopping()
    }
}
