import CRocksDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A RocksDB merge operator written in Swift.
///
/// RocksDB calls the operator from several background threads at once (flushes, compactions,
/// reads), so implementations must be stateless or synchronise their own state; hence `Sendable`.
/// The buffers handed to the methods are valid only for the duration of the call.
public protocol MergeOperator: Sendable {
    /// The name stored in the database's OPTIONS file. Changing it makes RocksDB refuse to open
    /// a column family that was written with the old name, so treat it as part of the format.
    var name: String { get }

    /// Combines an existing value (absent when the key has none) with operands, oldest first.
    /// - Returns: the new value, or `nil` when the input cannot be merged; RocksDB then reports
    ///   a corruption error for the read or compaction that needed the result.
    func fullMerge(key: UnsafeRawBufferPointer, existingValue: UnsafeRawBufferPointer?, operands: MergeOperands) -> [UInt8]?

    /// Combines adjacent operands into one without the base value, oldest first.
    /// - Returns: the combined operand, or `nil` to let RocksDB keep the operands as they are.
    func partialMerge(key: UnsafeRawBufferPointer, operands: MergeOperands) -> [UInt8]?
}

extension MergeOperator {
    /// By default operands are not combined ahead of a full merge.
    public func partialMerge(key: UnsafeRawBufferPointer, operands: MergeOperands) -> [UInt8]? { nil }
}

/// The operands of one merge call, oldest first, borrowed from RocksDB for the call's duration.
public struct MergeOperands: RandomAccessCollection {
    private let pointers: UnsafePointer<UnsafePointer<CChar>?>?
    private let lengths: UnsafePointer<Int>?
    public let count: Int

    init(pointers: UnsafePointer<UnsafePointer<CChar>?>?, lengths: UnsafePointer<Int>?, count: Int) {
        self.pointers = pointers
        self.lengths = lengths
        self.count = count
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(position: Int) -> UnsafeRawBufferPointer {
        precondition(position >= 0 && position < count, "merge operand index out of range")
        guard let pointers, let lengths else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: pointers[position], count: lengths[position])
    }
}

/// Owns a Swift merge operator for the lifetime of its C counterpart; RocksDB releases it through
/// the destructor callback when the last options object or database referring to it goes away.
final class MergeOperatorBox {
    let mergeOperator: any MergeOperator
    let cName: UnsafeMutablePointer<CChar>

    init(_ mergeOperator: any MergeOperator) {
        self.mergeOperator = mergeOperator
        guard let name = strdup(mergeOperator.name) else {
            preconditionFailure("strdup failed: out of memory while registering a merge operator")
        }
        self.cName = name
    }

    deinit { free(cName) }

    /// Creates the C merge operator. Ownership passes to `rocksdb_options_set_merge_operator`.
    static func makeCOperator(_ mergeOperator: any MergeOperator) -> OpaquePointer {
        let state = Unmanaged.passRetained(MergeOperatorBox(mergeOperator)).toOpaque()
        guard let handle = rocksdb_mergeoperator_create(
            state,
            { state in
                guard let state else { return }
                Unmanaged<MergeOperatorBox>.fromOpaque(state).release()
            },
            { state, key, keyLength, existing, existingLength, operands, operandLengths, count, success, newLength in
                guard let state, let success, let newLength else { return nil }
                let box = Unmanaged<MergeOperatorBox>.fromOpaque(state).takeUnretainedValue()
                let keyBuffer = UnsafeRawBufferPointer(start: key, count: keyLength)
                let existingBuffer = existing.map { UnsafeRawBufferPointer(start: $0, count: existingLength) }
                let list = MergeOperands(pointers: operands, lengths: operandLengths, count: max(Int(count), 0))
                let result = box.mergeOperator.fullMerge(key: keyBuffer, existingValue: existingBuffer, operands: list)
                return MergeOperatorBox.handOver(result, success: success, length: newLength)
            },
            { state, key, keyLength, operands, operandLengths, count, success, newLength in
                guard let state, let success, let newLength else { return nil }
                let box = Unmanaged<MergeOperatorBox>.fromOpaque(state).takeUnretainedValue()
                guard let operands, let operandLengths, count > 0 else {
                    success.pointee = 0
                    return nil
                }
                let keyBuffer = UnsafeRawBufferPointer(start: key, count: keyLength)
                let list = MergeOperands(pointers: operands, lengths: operandLengths, count: Int(count))
                let result = box.mergeOperator.partialMerge(key: keyBuffer, operands: list)
                return MergeOperatorBox.handOver(result, success: success, length: newLength)
            },
            { _, value, _ in
                free(UnsafeMutableRawPointer(mutating: value))
            },
            { state in
                guard let state else { return nil }
                return UnsafePointer(Unmanaged<MergeOperatorBox>.fromOpaque(state).takeUnretainedValue().cName)
            }
        ) else {
            preconditionFailure("rocksdb_mergeoperator_create returned NULL")
        }
        return handle
    }

    /// Copies a merge result into malloc'ed memory, which RocksDB frees through `delete_value`.
    private static func handOver(
        _ result: [UInt8]?,
        success: UnsafeMutablePointer<UInt8>,
        length: UnsafeMutablePointer<Int>
    ) -> UnsafeMutablePointer<CChar>? {
        guard let result, let memory = malloc(max(result.count, 1)) else {
            success.pointee = 0
            length.pointee = 0
            return nil
        }
        result.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { memory.copyMemory(from: base, byteCount: bytes.count) }
        }
        success.pointee = 1
        length.pointee = result.count
        return memory.assumingMemoryBound(to: CChar.self)
    }
}
