// EX_SPIN_LOCK.
#include <kmlab/kernel/routines.hpp>
