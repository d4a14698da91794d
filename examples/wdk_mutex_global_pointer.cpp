// The wdk-mutex blog's program, in C++: a KMutex on the heap reached through
// a global atomic pointer, three system threads that each lock it and add to
// its value, joined by the blog's sequence (spawn, reference the thread
// object by handle, close the handle, wait on the object, dereference it),
// then the total printed through the guard and the mutex freed on "driver
// exit", as the blog says one MUST.
//
// kmlab::KMutex<T> waits on a futex; kmlab::KMutex<T, kmlab::backends::Dispatcher>
// is a real KMUTEX acquired with KeWaitForSingleObject, as wdk-mutex's is.
// Either works here.
#include <atomic>
#include <iostream>
#include <memory>
#include <vector>

#include <kmlab/kmlab.hpp>
#include <kmlab/kmlab_nt.hpp>

using namespace kmlab::nt;

namespace {
constexpr ULONG kThreads = 3;
constexpr ULONG kIterations = 1500;

// Rust: pub static HEAP_MTX_PTR: AtomicPtr<KMutex<u32>> = AtomicPtr::new(null_mut());
std::atomic<kmlab::KMutex<ULONG>*> HEAP_MTX_PTR{nullptr};

void callback_fn(PVOID) {
    for (ULONG i = 0; i < kIterations; ++i) {
        kmlab::KMutex<ULONG>* p = HEAP_MTX_PTR.load();
        if (p != nullptr) {
            auto lock = p->lock().value();
            *lock += 1;
        }
    }
}
}  // namespace

int main() {
    // Prepare the global for access in several threads (Box::into_raw).
    HEAP_MTX_PTR.store(std::make_unique<kmlab::KMutex<ULONG>>(0).release());

    // Spawn the threads.
    std::vector<HANDLE> th;
    for (ULONG i = 0; i < kThreads; ++i) {
        HANDLE thread_handle = nullptr;
        const NTSTATUS res = PsCreateSystemThread(&thread_handle, 0, nullptr, nullptr, nullptr,
                                                  callback_fn, nullptr);
        if (res == STATUS_SUCCESS) th.push_back(thread_handle);
    }

    // Join them.
    for (HANDLE thread_handle : th) {
        if (thread_handle != nullptr && KeGetCurrentIrql() <= APC_LEVEL) {
            PVOID thread_obj = nullptr;
            const NTSTATUS ref_status = ObReferenceObjectByHandle(
                thread_handle, THREAD_ALL_ACCESS, nullptr, KernelMode, &thread_obj, nullptr);
            ZwClose(thread_handle);
            if (ref_status == STATUS_SUCCESS) {
                KeWaitForSingleObject(thread_obj, Executive, KernelMode, FALSE, nullptr);
                ObfDereferenceObject(thread_obj);
            }
        }
    }

    // Check the result, printing it through the guard.
    const ULONG expected = kThreads * kIterations;
    bool ok = false;
    if (kmlab::KMutex<ULONG>* p = HEAP_MTX_PTR.load()) {
        auto lock = p->lock().value();
        std::cout << th.size() << " threads joined; the value is: " << lock << " (expected "
                  << expected << ")\n";
        ok = *lock == expected;
    }

    // Driver exit: take the pointer back and free the mutex, keeping its value.
    std::unique_ptr<kmlab::KMutex<ULONG>> owned(HEAP_MTX_PTR.exchange(nullptr));
    const ULONG last = std::move(*owned).into_inner().value();
    ok = ok && th.size() == kThreads && last == expected;
    std::cout << (ok ? "global pointer: every increment counted" : "MISMATCH") << '\n';
    return ok ? 0 : 1;
}
