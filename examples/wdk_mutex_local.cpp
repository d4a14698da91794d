// wdk-mutex's first example, in C++: a locally scoped mutex whose guard
// prints the value without being dereferenced, released at the end of the
// scope. Then what its to_owned() / to_owned_box() do: the value copied or
// moved out of the mutex.
//
// Rust (wdk-mutex)                                 C++ (kmlab)
//   let mtx = KMutex::new(0u32).unwrap();            kmlab::KMutex<std::uint32_t> mtx(0);
//   let lock = mtx.lock().unwrap();                  auto lock = mtx.lock().value();
//   println!("The value is: {}", lock);              std::cout << "The value is: " << lock;
#include <cstdint>
#include <iostream>
#include <memory>

#include <kmlab/kmlab.hpp>

int main() {
    kmlab::KMutex<std::uint32_t> mtx(0);
    {
        auto lock = mtx.lock().value();  // .value() throws where Rust's unwrap() panics
        // If the value can be printed, the guard prints it: no need to dereference.
        std::cout << "The value is: " << lock << '\n';
        *lock += 1;
    }  // the mutex is released here, as RAII releases it in the seed

    // Match the result instead of unwrapping, to handle the error (here: the
    // IRQL is fine, so it is not taken).
    if (auto lock = mtx.lock()) {
        *(*lock) += 1;
        std::cout << "The value is: " << *lock << '\n';
    } else {
        std::cerr << "lock failed: " << lock.error().message() << '\n';
        return 1;
    }

    // to_owned(): a copy, the mutex keeps its value. into_inner(): the value
    // moved out, as wdk-mutex's to_owned() consumes its mutex; to_owned_box()
    // is the same moved onto the heap.
    const std::uint32_t copy = mtx.to_owned().value();
    auto boxed = std::make_unique<std::uint32_t>(std::move(mtx).into_inner().value());
    std::cout << "copied out: " << copy << ", moved out: " << *boxed << '\n';
    return copy == 2 && *boxed == 2 ? 0 : 1;
}
