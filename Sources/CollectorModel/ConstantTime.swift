/// Comparison of secrets in time that depends only on their lengths, never on where they differ.
public enum ConstantTime {
    /// Whether `lhs` and `rhs` hold the same bytes. Every byte is compared, so the time taken
    /// does not tell an attacker how long a matching prefix was.
    public static func equals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for (left, right) in zip(lhs, rhs) { difference |= left ^ right }
        return difference == 0
    }
}
