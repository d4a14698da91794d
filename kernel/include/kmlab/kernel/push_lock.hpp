// EX_PUSH_LOCK: types and routines.
#pragma once

#include <kmlab/kernel/routines.hpp>
