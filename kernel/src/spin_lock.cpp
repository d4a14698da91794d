// KSPIN_LOCK and queued spin locks.
#include <kmlab/kernel/routines.hpp>
