// The RocksDB C API from Debian's librocksdb-dev. Only the RocksDB target imports this module.
#include <rocksdb/c.h>
