import RocksDB

/// The merge operator of the `samples` column family: operands are ``SampleBlock``s holding the
/// samples of one write; merging unions them by (field, timestamp), later operand winning.
///
/// Because the result depends only on the set of (field, timestamp) → latest value, merges are
/// idempotent under retries and independent of arrival order for distinct samples, in memtables,
/// flushes and compactions alike. A record never holds more than ``maxSamples`` samples; beyond
/// that the ones with the latest timestamps are kept.
public struct SampleBlockMergeOperator: MergeOperator {
    public let name = "flashback.samples.v1"
    /// Bound on one block's size (default 131,072 samples ≈ 2.3 MiB: 9 fields at 1/s for the
    /// four hours of a block).
    public let maxSamples: Int

    /// A `SampleBlockMergeOperator` from its parts.
    public init(maxSamples: Int = 131_072) {
        self.maxSamples = maxSamples
    }

    /// Merges the operands into the existing block: a union per (field, timestamp), the later operand winning, so retries and late data change nothing twice.
    public func fullMerge(key: UnsafeRawBufferPointer, existingValue: UnsafeRawBufferPointer?, operands: MergeOperands) -> [UInt8]? {
        var records: [SampleBlock] = []
        records.reserveCapacity(operands.count + 1)
        if let existingValue {
            // A record that does not decode is corruption: fail loudly rather than drop samples.
            guard let existing = SampleBlock(decoding: existingValue) else { return nil }
            records.append(existing)
        }
        for operand in operands {
            guard let record = SampleBlock(decoding: operand) else { return nil }
            records.append(record)
        }
        return capped(SampleBlock.merging(records)).encoded()
    }

    /// Declines (`nil`): RocksDB then keeps the operands as they are. Merging them when a
    /// memtable is flushed decoded and re-encoded every block once per memtable during ingest
    /// (a tenth of the collector's CPU under load); the full merge of a compaction, or of the
    /// settle after a burst, folds them once.
    public func partialMerge(key: UnsafeRawBufferPointer, operands: MergeOperands) -> [UInt8]? {
        nil
    }

    func capped(_ record: SampleBlock) -> SampleBlock {
        guard record.samples.count > maxSamples else { return record }
        let kept = record.samples.sorted { ($0.timestamp, $0.field) > ($1.timestamp, $1.field) }.prefix(maxSamples)
        return SampleBlock(samples: Array(kept))
    }
}
