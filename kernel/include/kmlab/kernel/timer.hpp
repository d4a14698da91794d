// KTIMER: types and routines.
#pragma once

#include <kmlab/kernel/routines.hpp>
