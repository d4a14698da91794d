// The mutex x backend combinations every typed suite runs over, and readable
// names for them (KMutex_futex, FastMutex_spin, ...).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include <kmlab/kmlab.hpp>

namespace kmlab::test {

using AllMutexes =
    ::testing::Types<KMutex<long, backends::Futex>, KMutex<long, backends::Spin>,
                     KMutex<long, backends::Dispatcher>, FastMutex<long, backends::Futex>,
                     FastMutex<long, backends::Spin>, FastMutex<long, backends::Dispatcher>,
                     GuardedMutex<long, backends::Futex>, GuardedMutex<long, backends::Spin>,
                     GuardedMutex<long, backends::Dispatcher>>;

struct MutexNames {
    template <class M>
    static std::string GetName(int) {
        return std::string(M::kind()) + "_" + std::string(M::backend::name());
    }
};

}  // namespace kmlab::test
