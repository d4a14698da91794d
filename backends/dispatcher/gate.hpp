// A lock_bit gate over a dispatcher object that behaves as a synchronization
// event (a FAST_MUTEX's KEVENT, a KGUARDED_MUTEX's KGATE): wait() blocks in
// the dispatcher until signalled, signal() sets the object.
#pragma once

namespace kmlab::dispatcher {

struct ObjectGate {
    void* object;  // PKEVENT or PKGATE
    void wait();
    void signal();
};

}  // namespace kmlab::dispatcher
