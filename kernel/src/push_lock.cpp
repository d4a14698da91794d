// EX_PUSH_LOCK.
#include <kmlab/kernel/routines.hpp>
