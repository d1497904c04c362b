import Exposition

/// How the control plane's shared database is doing, in cluster mode (`--registry-url`): what
/// `/-/ready`, `/health` and `/metrics` say about it. `nil` in `Dependencies` means the embedded
/// store, which is up whenever the process is.
public struct ControlPlaneHealth: Sendable {
    /// Whether the last operations reached the database.
    public var isAvailable: @Sendable () -> Bool
    /// The database's families for `/metrics`, read at scrape time.
    public var metricFamilies: @Sendable () -> [MetricFamily]

    /// A `ControlPlaneHealth` from its parts.
    public init(isAvailable: @escaping @Sendable () -> Bool, metricFamilies: @escaping @Sendable () -> [MetricFamily]) {
        self.isAvailable = isAvailable
        self.metricFamilies = metricFamilies
    }
}
