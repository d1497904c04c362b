import RocksDB

/// The merge operator of the `minute` column family: operands are ``MinuteRecord``s holding the
/// samples of one write; merging unions them by (field, timestamp), later operand winning.
///
/// Because the result depends only on the set of (field, timestamp) → latest value, merges are
/// idempotent under retries and independent of arrival order for distinct samples, in memtables,
/// flushes and compactions alike. A record never holds more than ``maxSamples`` samples; beyond
/// that the ones with the latest timestamps are kept.
public struct MinuteMergeOperator: MergeOperator {
    public let name = "flashback.minute.v1"
    /// Bound on one record's size (default 3,600 samples ≈ 64 KiB: every field at 1/s).
    public let maxSamples: Int

    public init(maxSamples: Int = 3600) {
        self.maxSamples = maxSamples
    }

    public func fullMerge(key: UnsafeRawBufferPointer, existingValue: UnsafeRawBufferPointer?, operands: MergeOperands) -> [UInt8]? {
        var records: [MinuteRecord] = []
        records.reserveCapacity(operands.count + 1)
        if let existingValue {
            // A record that does not decode is corruption: fail loudly rather than drop samples.
            guard let existing = MinuteRecord(decoding: existingValue) else { return nil }
            records.append(existing)
        }
        for operand in operands {
            guard let record = MinuteRecord(decoding: operand) else { return nil }
            records.append(record)
        }
        return capped(MinuteRecord.merging(records)).encoded()
    }

    public func partialMerge(key: UnsafeRawBufferPointer, operands: MergeOperands) -> [UInt8]? {
        fullMerge(key: key, existingValue: nil, operands: operands)
    }

    func capped(_ record: MinuteRecord) -> MinuteRecord {
        guard record.samples.count > maxSamples else { return record }
        let kept = record.samples.sorted { ($0.timestamp, $0.field) > ($1.timestamp, $1.field) }.prefix(maxSamples)
        return MinuteRecord(samples: Array(kept))
    }
}
