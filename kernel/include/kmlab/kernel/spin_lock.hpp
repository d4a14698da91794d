// KSPIN_LOCK, in-stack queued spin locks and EX_SPIN_LOCK: types and routines.
#pragma once

#include <kmlab/kernel/routines.hpp>
