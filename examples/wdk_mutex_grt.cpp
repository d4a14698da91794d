// wdk-mutex's Grt example, in C++: DriverEntry initialises the global
// registry and registers the mutexes by name, three system threads look them
// up by name and add to their values, and driver exit destroys the registry.
// One counter is a KMutex (the blog's), one a FastMutex (the README's).
//
// Unlike wdk-mutex's &'static references, a looked-up handle shares the
// mutex's ownership: a thread still holding one after Grt::destroy() keeps a
// valid mutex, where the seed's would dangle.
#include <iostream>
#include <vector>

#include <kmlab/kmlab.hpp>
#include <kmlab/kmlab_nt.hpp>

using namespace kmlab::nt;
using kmlab::Grt;

namespace {
constexpr ULONG kThreads = 3;
constexpr ULONG kIterations = 1500;

// Register the mutexes in the Grt, each with the value 0.
NTSTATUS my_function() {
    if (auto r = Grt::register_kmutex<ULONG>("my_test_mutex", 0); !r) {
        std::cerr << "register failed: " << r.error().message() << '\n';
        return STATUS_UNSUCCESSFUL;
    }
    // register_fast_mutex refuses a key in use, as wdk-mutex's
    // register_fast_mutex_checked does; register_or_replace_fast_mutex
    // overwrites it, as its register_fast_mutex does.
    if (!Grt::register_or_replace_fast_mutex<ULONG>("my_fast_mutex", 0)) return STATUS_UNSUCCESSFUL;
    return STATUS_SUCCESS;
}

void my_thread_fn_pointer(PVOID) {
    for (ULONG i = 0; i < kIterations; ++i) {
        auto my_mutex = Grt::get_kmutex<ULONG>("my_test_mutex");
        if (!my_mutex) {
            std::cerr << "Error in thread: " << my_mutex.error().message() << '\n';
            return;
        }
        auto lock = (*my_mutex)->lock().value();
        *lock += 1;

        auto fast = Grt::get_fast_mutex<ULONG>("my_fast_mutex");
        if (!fast) return;
        *(*fast)->lock().value() += 1;
    }
}

NTSTATUS driver_entry() {
    if (auto r = Grt::init(); !r) {
        std::cerr << "Error creating Grt!: " << r.error().message() << '\n';
        return STATUS_UNSUCCESSFUL;
    }
    return my_function();
}

void driver_exit() {
    (void)Grt::destroy();
}
}  // namespace

int main() {
    if (!NT_SUCCESS(driver_entry())) return 1;

    std::vector<HANDLE> th;
    for (ULONG i = 0; i < kThreads; ++i) {
        HANDLE thread_handle = nullptr;
        if (PsCreateSystemThread(&thread_handle, 0, nullptr, nullptr, nullptr, my_thread_fn_pointer,
                                 nullptr) == STATUS_SUCCESS)
            th.push_back(thread_handle);
    }
    for (HANDLE thread_handle : th) {
        PVOID thread_obj = nullptr;
        const NTSTATUS ref_status = ObReferenceObjectByHandle(
            thread_handle, THREAD_ALL_ACCESS, nullptr, KernelMode, &thread_obj, nullptr);
        ZwClose(thread_handle);
        if (ref_status == STATUS_SUCCESS) {
            KeWaitForSingleObject(thread_obj, Executive, KernelMode, FALSE, nullptr);
            ObfDereferenceObject(thread_obj);
        }
    }

    const ULONG expected = kThreads * kIterations;
    auto kmutex = Grt::get_kmutex<ULONG>("my_test_mutex").value();
    auto fast = Grt::get_fast_mutex<ULONG>("my_fast_mutex").value();
    driver_exit();  // the handles above keep their mutexes alive
    auto k = kmutex->lock().value();
    auto f = fast->lock().value();
    std::cout << "KMutex \"my_test_mutex\":    " << k << " (expected " << expected << ")\n"
              << "FastMutex \"my_fast_mutex\": " << f << " (expected " << expected << ")\n";
    const bool ok = th.size() == kThreads && *k == expected && *f == expected;
    std::cout << (ok ? "Grt: every increment counted" : "MISMATCH") << '\n';
    return ok ? 0 : 1;
}
