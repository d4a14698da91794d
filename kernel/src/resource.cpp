// ERESOURCE.
#include <kmlab/kernel/routines.hpp>
