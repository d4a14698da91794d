// The idiomatic spin lock type(s).
#pragma once

#include <kmlab/mutexes/error.hpp>
