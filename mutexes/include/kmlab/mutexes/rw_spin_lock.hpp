// The idiomatic reader/writer spin lock type.
#pragma once

#include <kmlab/mutexes/error.hpp>
