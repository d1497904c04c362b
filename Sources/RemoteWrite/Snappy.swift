import CSnappy

/// Snappy's block format (not the framed stream format), as remote_write bodies use it; the
/// compressor is Debian's libsnappy.
public enum Snappy {
    /// `input` compressed.
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        var length = snappy_max_compressed_length(input.count)
        var output = [UInt8](repeating: 0, count: length)
        let status = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { target in
                snappy_compress(source.baseAddress?.assumingMemoryBound(to: CChar.self), input.count,
                                target.baseAddress?.assumingMemoryBound(to: CChar.self), &length)
            }
        }
        // Compression fails only on a too-small buffer, which max_compressed_length rules out.
        precondition(status == SNAPPY_OK, "snappy_compress failed with a buffer of max_compressed_length")
        output.removeSubrange(length...)
        return output
    }

    /// `input` decompressed, or `nil` when it is not a valid block or would exceed `maxLength`
    /// bytes (the length a block announces is checked before anything is allocated).
    public static func decompress(_ input: [UInt8], maxLength: Int) -> [UInt8]? {
        input.withUnsafeBytes { source -> [UInt8]? in
            let base = source.baseAddress?.assumingMemoryBound(to: CChar.self)
            var length = 0
            guard snappy_uncompressed_length(base, input.count, &length) == SNAPPY_OK, length <= maxLength,
                  snappy_validate_compressed_buffer(base, input.count) == SNAPPY_OK else { return nil }
            var output = [UInt8](repeating: 0, count: length)
            let status = output.withUnsafeMutableBytes { target in
                snappy_uncompress(base, input.count, target.baseAddress?.assumingMemoryBound(to: CChar.self), &length)
            }
            guard status == SNAPPY_OK else { return nil }
            output.removeSubrange(length...)
            return output
        }
    }
}
