// Debian's libsnappy-dev: the C binding of Snappy (block format, as remote_write uses it).
#include <snappy-c.h>
