import CollectorTesting
import Foundation
import Synchronization
import Testing

/// The helpers every integration test leans on: ports no one else takes, blocking work kept off
/// the cooperative pool.
@Suite("Test support")
struct TestSupportTests {
    /// Ports are handed out once, below the kernel's ephemeral range (where no client connection
    /// takes one as its source port), and free when handed out.
    @Test func loopbackPortsAreDistinctAndBelowTheEphemeralRange() throws {
        let range = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        let ephemeralStart = try #require(range.first)
        let ports = (0..<200).map { index in freeLoopbackPort(udp: index % 2 == 1) }
        #expect(Set(ports).count == ports.count)
        #expect(ports.allSatisfy { $0 > 1024 && $0 < ephemeralStart }, "\(ports.filter { $0 >= ephemeralStart })")
        // Nothing listens on a port handed out: a connection is refused.
        let closed = try #require(ports.first)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(closed).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == -1 && errno == ECONNREFUSED)
    }

    /// Blocking work runs on threads of its own: more blocked waits at once than the cooperative
    /// pool has threads, each released only when all have started, all finish. (On the pool,
    /// the waits would hold every thread and none would start the rest.)
    @Test(.timeLimit(.minutes(3))) func blockingWorkRunsOffTheCooperativePool() async throws {
        let waits = ProcessInfo.processInfo.activeProcessorCount * 4
        let started = StartedCount()
        let allStarted = DispatchSemaphore(value: 0)
        let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<waits {
                group.addTask {
                    try await onOwnThread {
                        if started.count.add(1, ordering: .relaxed).newValue == waits {
                            for _ in 0..<waits { allStarted.signal() }
                        }
                        return allStarted.wait(timeout: .now() + 50) == .success
                    }
                }
            }
            return try await group.reduce(into: 0) { count, released in count += released ? 1 : 0 }
        }
        #expect(finished == waits)
    }

    final class StartedCount: Sendable {
        let count = Atomic<Int>(0)
    }
}
