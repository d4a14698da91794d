// The idiomatic resource type(s).
#pragma once

#include <kmlab/mutexes/error.hpp>
