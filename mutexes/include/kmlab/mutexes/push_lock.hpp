// The idiomatic push lock type(s).
#pragma once

#include <kmlab/mutexes/error.hpp>
