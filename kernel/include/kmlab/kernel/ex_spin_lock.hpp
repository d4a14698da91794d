// EX_SPIN_LOCK (reader/writer spin lock): types and routines.
#pragma once

#include <kmlab/kernel/routines.hpp>
