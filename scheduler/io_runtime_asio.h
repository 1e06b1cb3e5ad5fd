// The Boost.Asio inside IoRuntime, for the servers that run on it (agent_hub.cc,
// admin_server.cc, io_runtime.cc).
#pragma once

#include <boost/asio.hpp>
#include <thread>
#include <vector>

#include "scheduler/io_runtime.h"

namespace dx::scheduler {

struct IoRuntime::Impl {
  Impl(int io_count, int worker_count)
      : threads(io_count < 1 ? 1 : io_count),
        workers(static_cast<size_t>(worker_count < 1 ? 1 : worker_count)),
        guard(boost::asio::make_work_guard(io)) {}

  const int threads;
  boost::asio::io_context io;
  boost::asio::thread_pool workers;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard;
  std::vector<std::thread> io_threads;
  bool stopped = false;
};

}  // namespace dx::scheduler
