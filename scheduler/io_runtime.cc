#include "scheduler/io_runtime.h"

#include "scheduler/io_runtime_asio.h"

namespace dx::scheduler {

IoRuntime::IoRuntime(int io_threads, int worker_threads)
    : impl_(std::make_unique<Impl>(io_threads, worker_threads)) {}

IoRuntime::~IoRuntime() { Stop(); }

void IoRuntime::Start() {
  if (!impl_->io_threads.empty() || impl_->stopped) return;
  for (int i = 0; i < impl_->threads; ++i) {
    impl_->io_threads.emplace_back([this] { impl_->io.run(); });
  }
}

void IoRuntime::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->guard.reset();
  impl_->io.stop();
  for (std::thread& t : impl_->io_threads) t.join();
  impl_->io_threads.clear();
  impl_->workers.join();
}

int IoRuntime::io_threads() const { return impl_->threads; }

}  // namespace dx::scheduler
