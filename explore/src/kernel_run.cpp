// explore::run(): a driver's test under the explorer, the whole emulated
// kernel under the model (explore.hpp).
#include <kmlab/explore.hpp>

#include <stdexcept>

namespace kmlab::explore {

Result run(const Config&, const std::function<void()>&) {
    throw std::logic_error("explore::run: not implemented yet");
}

}  // namespace kmlab::explore
