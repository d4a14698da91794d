// KTIMER.
#include <kmlab/kernel/routines.hpp>
