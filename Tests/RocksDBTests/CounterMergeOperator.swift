import RocksDB

/// Adds little-endian UInt64 operands; the test merge operator.
struct CounterMergeOperator: MergeOperator {
    let name = "test.counter.v1"

    static func decode(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return bytes.loadUnaligned(as: UInt64.self)
    }

    static func encode(_ value: UInt64) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    func fullMerge(key: UnsafeRawBufferPointer, existingValue: UnsafeRawBufferPointer?, operands: MergeOperands) -> [UInt8]? {
        var total: UInt64 = 0
        if let existingValue {
            guard let base = Self.decode(existingValue) else { return nil }
            total = base
        }
        for operand in operands {
            guard let value = Self.decode(operand) else { return nil }
            total &+= value
        }
        return Self.encode(total)
    }

    func partialMerge(key: UnsafeRawBufferPointer, operands: MergeOperands) -> [UInt8]? {
        fullMerge(key: key, existingValue: nil, operands: operands)
    }
}
