// KSPIN_LOCK and in-stack queued spin locks: types and routines.
#pragma once

#include <kmlab/kernel/routines.hpp>
