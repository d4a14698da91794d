// KSPIN_LOCK, queued spin locks, EX_SPIN_LOCK.
#include <kmlab/kernel/routines.hpp>
