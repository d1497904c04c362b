import CRocksDB

/// Block compression for SST files.
public enum Compression: Int32, Sendable {
    case none = 0
    case snappy = 1
    case zlib = 2
    case lz4 = 4
    case zstd = 7
}

/// Database-wide settings, applied when the database is opened.
///
/// Durability: the write-ahead log is always on; whether a write is fsynced is chosen per write
/// (``Database/write(_:sync:)``), so these options never weaken an acknowledged write.
public struct DatabaseOptions: Sendable {
    /// Create the directory and the database when absent (parents included).
    public var createIfMissing = true
    /// Background threads for flushes and compactions (`IncreaseParallelism`).
    public var parallelism: Int32 = 2
    /// Maximum number of SST files kept open; -1 keeps all open.
    public var maxOpenFiles: Int32 = 512
    /// Upper bound of the total size of WAL files before RocksDB forces memtable flushes.
    public var maxTotalWALSize: UInt64 = 256 << 20
    /// How many RocksDB info-log files (`LOG.old.*`) to keep.
    public var keepLogFileCount: Int = 5
    /// Collect RocksDB statistics, readable through ``Database/statistics()``.
    public var enableStatistics = true
    /// Shared block cache size in bytes for all column families.
    public var blockCacheBytes: Int = 64 << 20
    /// Memtable memory of all column families together; beyond it the largest memtable is
    /// flushed early (`db_write_buffer_size`; 0 = no overall bound). Bounds resident memory.
    public var totalWriteBufferBytes: Int = 0

    /// The defaults, as documented on each property.
    public init() {}
}

/// How one column family is opened.
public struct ColumnFamilyDescriptor: Sendable {
    /// The column family's name; `"default"` always exists.
    public var name: String
    /// An optional merge operator; it becomes part of the column family's format.
    public var mergeOperator: (any MergeOperator)?
    /// An optional compaction filter (e.g. time-based retention).
    public var compactionFilter: (any CompactionFilter)?
    /// Compression for every level but the last.
    public var compression: Compression = .lz4
    /// Compression for the bottommost level, where most bytes live.
    public var bottommostCompression: Compression = .zstd
    /// Memtable size before a flush to L0.
    public var writeBufferBytes: Int = 32 << 20
    /// Bits per key of a Bloom filter for point lookups, or `nil` for none.
    public var bloomBitsPerKey: Double? = 10
    /// Uncompressed size of a data block (RocksDB's default 4 KiB). Larger blocks suit families
    /// read in long ranges: fewer block-cache entries and better compression.
    public var blockBytes: Int = 4 << 10

    /// A `ColumnFamilyDescriptor` from its parts.
    public init(name: String, mergeOperator: (any MergeOperator)? = nil, compactionFilter: (any CompactionFilter)? = nil) {
        self.name = name
        self.mergeOperator = mergeOperator
        self.compactionFilter = compactionFilter
    }
}

/// Owns the C option objects built from the Swift descriptions; freed after the database closes.
final class NativeOptions {
    let database: OpaquePointer
    private(set) var columnFamilies: [OpaquePointer] = []
    private var tableOptions: [OpaquePointer] = []
    /// Compaction filters are not owned by the options; destroyed here, after the database closed.
    private var compactionFilters: [OpaquePointer] = []
    private let cache: OpaquePointer

    init(_ options: DatabaseOptions) {
        guard let database = rocksdb_options_create(), let cache = rocksdb_cache_create_lru(options.blockCacheBytes) else {
            preconditionFailure("rocksdb_options_create returned NULL: out of memory")
        }
        self.database = database
        self.cache = cache
        rocksdb_options_set_create_if_missing(database, options.createIfMissing ? 1 : 0)
        rocksdb_options_set_create_missing_column_families(database, 1)
        rocksdb_options_increase_parallelism(database, options.parallelism)
        rocksdb_options_set_max_background_jobs(database, max(options.parallelism, 2))
        rocksdb_options_set_max_open_files(database, options.maxOpenFiles)
        rocksdb_options_set_max_total_wal_size(database, options.maxTotalWALSize)
        rocksdb_options_set_keep_log_file_num(database, options.keepLogFileCount)
        rocksdb_options_set_db_write_buffer_size(database, options.totalWriteBufferBytes)
        // RocksDB reserves 4 MiB of disk for the MANIFEST up front (fallocate); its edits are a
        // few hundred bytes per flush or compaction, so 64 KiB at a time is plenty, and a small
        // database does not carry megabytes it never writes.
        rocksdb_options_set_manifest_preallocation_size(database, 64 << 10)
        // Sync data files in the background every MiB rather than in one burst at the end.
        rocksdb_options_set_bytes_per_sync(database, 1 << 20)
        rocksdb_options_set_wal_bytes_per_sync(database, 1 << 20)
        if options.enableStatistics { rocksdb_options_enable_statistics(database) }
    }

    /// Builds the C options for one column family (copying the database-wide settings).
    func addColumnFamily(_ descriptor: ColumnFamilyDescriptor) -> OpaquePointer {
        guard let options = rocksdb_options_create_copy(database), let table = rocksdb_block_based_options_create() else {
            preconditionFailure("rocksdb_options_create_copy returned NULL: out of memory")
        }
        rocksdb_block_based_options_set_block_cache(table, cache)
        rocksdb_block_based_options_set_format_version(table, 5)
        rocksdb_block_based_options_set_block_size(table, descriptor.blockBytes)
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(table, 1)
        // Partitioned index and filters: a compacted SST of tens of MiB has an index of about a
        // MiB, larger than one shard of the block cache (64 MiB in 64 shards), which then never
        // keeps it, so every point read re-read and re-checked the whole index (1 ms a read on a
        // settled `day` family). In partitions of 4 KiB each read loads one, and the small top
        // level stays pinned.
        rocksdb_block_based_options_set_index_type(table, Int32(rocksdb_block_based_table_index_type_two_level_index_search))
        rocksdb_block_based_options_set_partition_filters(table, 1)
        rocksdb_block_based_options_set_metadata_block_size(table, 4096)
        rocksdb_block_based_options_set_pin_top_level_index_and_filter(table, 1)
        if let bits = descriptor.bloomBitsPerKey, let filter = rocksdb_filterpolicy_create_bloom_full(bits) {
            // The table options take ownership of the filter policy.
            rocksdb_block_based_options_set_filter_policy(table, filter)
        }
        rocksdb_options_set_block_based_table_factory(options, table)
        rocksdb_options_set_compression(options, descriptor.compression.rawValue)
        rocksdb_options_set_bottommost_compression(options, descriptor.bottommostCompression.rawValue)
        rocksdb_options_set_write_buffer_size(options, descriptor.writeBufferBytes)
        rocksdb_options_set_level_compaction_dynamic_level_bytes(options, 1)
        if let mergeOperator = descriptor.mergeOperator {
            // Ownership of the C merge operator passes to the options (a shared_ptr inside).
            rocksdb_options_set_merge_operator(options, MergeOperatorBox.makeCOperator(mergeOperator))
        }
        if let filter = descriptor.compactionFilter {
            let handle = CompactionFilterBox.makeCFilter(filter)
            rocksdb_options_set_compaction_filter(options, handle)
            compactionFilters.append(handle)
        }
        columnFamilies.append(options)
        tableOptions.append(table)
        return options
    }

    deinit {
        for options in columnFamilies { rocksdb_options_destroy(options) }
        for table in tableOptions { rocksdb_block_based_options_destroy(table) }
        rocksdb_options_destroy(database)
        rocksdb_cache_destroy(cache)
        for filter in compactionFilters { rocksdb_compactionfilter_destroy(filter) }
    }
}
