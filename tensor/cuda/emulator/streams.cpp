// Streams and events of the emulated device. Every stream has an executor thread that runs its
// work (kernels, copies, memsets, library calls) in order, asynchronously to the host, so a
// missing synchronisation, wait_stream or record_stream shows up as it would on a GPU instead of
// being hidden by eager execution.
//
// Ordering follows CUDA: work on one stream runs in issue order; cudaStreamWaitEvent makes a
// stream wait for the work an event captured; the legacy default stream (handle 0) waits for all
// earlier work of every blocking stream and they wait for it; cudaStreamNonBlocking streams do
// not synchronise with it.
#include <chrono>
#include <cstdio>
#include <set>

#include "tensor/cuda/emulator/internal.h"

namespace gndet::cuda::emu {

class StreamState {
 public:
  StreamState(bool legacy, bool blocking) : legacy(legacy), blocking(blocking) {}

  const bool legacy;    // the device's legacy default stream
  const bool blocking;  // synchronises with the legacy default stream

  struct Item {
    std::string what;
    std::function<void()> run;  // empty for a wait
    StreamPtr wait_stream;      // wait until it has completed wait_seq items
    uint64_t wait_seq = 0;
  };

  std::mutex mu;
  std::condition_variable work_cv, done_cv;
  std::deque<Item> queue;
  uint64_t issued = 0, completed = 0;
  bool stopping = false;
  std::thread executor;
};

namespace {

thread_local bool tl_executor = false;

// Never destroyed (as a GPU's context outlives static destruction): executors may still be
// running when the process exits, and tensors freed at exit still queue work.
struct Registry {
  std::mutex mu;
  std::map<cudaStream_t, StreamPtr> streams;  // created streams by handle
  StreamPtr legacy = std::make_shared<StreamState>(true, true);  // the legacy default stream of device 0
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

StreamPtr legacy_stream() { return registry().legacy; }

void executor_main(StreamState* s) {
  tl_executor = true;
  allow_device_access_on_this_thread();
  for (;;) {
    StreamState::Item item;
    {
      std::unique_lock<std::mutex> lock(s->mu);
      s->work_cv.wait(lock, [&] { return !s->queue.empty() || s->stopping; });
      if (s->queue.empty()) return;
      item = s->queue.front();
    }
    if (item.wait_stream) {
      wait_until_done(item.wait_stream, item.wait_seq);
    } else if (sticky_error() == cudaSuccess) {
      try {
        item.run();
      } catch (const DeviceFault& f) {
        set_sticky(f.error, f.report);
      } catch (const std::exception& e) {
        set_sticky(cudaErrorLaunchFailure, item.what + ": " + e.what());
      }
    }
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->queue.pop_front();
      ++s->completed;
    }
    s->done_cv.notify_all();
  }
}

// Appends one item; the caller holds no stream lock. Returns its sequence number.
uint64_t push(const StreamPtr& s, StreamState::Item item) {
  std::lock_guard<std::mutex> lock(s->mu);
  if (!s->executor.joinable()) s->executor = std::thread(executor_main, s.get());
  s->queue.push_back(std::move(item));
  const uint64_t seq = ++s->issued;
  s->work_cv.notify_one();
  return seq;
}

std::vector<StreamPtr> all_streams() {
  std::vector<StreamPtr> out{legacy_stream()};
  std::lock_guard<std::mutex> lock(registry().mu);
  for (const auto& [h, s] : registry().streams) out.push_back(s);
  return out;
}

}  // namespace

StreamPtr stream_for_handle(cudaStream_t handle) {
  if (handle == nullptr || handle == cudaStreamLegacy) return legacy_stream();
  std::lock_guard<std::mutex> lock(registry().mu);
  const auto it = registry().streams.find(handle);
  return it == registry().streams.end() ? nullptr : it->second;
}

uint64_t enqueue(const StreamPtr& s, std::string what, std::function<void()> work) {
  // Implicit synchronisation of the legacy default stream with blocking streams.
  if (s->legacy) {
    for (const StreamPtr& other : all_streams()) {
      if (other == s || !other->blocking) continue;
      const uint64_t last = last_issued(other);
      if (!is_done(other, last)) push(s, {"wait for a blocking stream", {}, other, last});
    }
  } else if (s->blocking) {
    const StreamPtr l = legacy_stream();
    const uint64_t last = last_issued(l);
    if (!is_done(l, last)) push(s, {"wait for the legacy default stream", {}, l, last});
  }
  return push(s, {std::move(what), std::move(work), nullptr, 0});
}

void wait_until_done(const StreamPtr& s, uint64_t seq) {
  std::unique_lock<std::mutex> lock(s->mu);
  s->done_cv.wait(lock, [&] { return s->completed >= seq; });
}

bool is_done(const StreamPtr& s, uint64_t seq) {
  std::lock_guard<std::mutex> lock(s->mu);
  return s->completed >= seq;
}

uint64_t last_issued(const StreamPtr& s) {
  std::lock_guard<std::mutex> lock(s->mu);
  return s->issued;
}

void synchronize_all() {
  for (const StreamPtr& s : all_streams()) wait_until_done(s, last_issued(s));
}

bool on_executor_thread() { return tl_executor; }

cudaError_t enqueue_host_work(cudaStream_t stream, const char* what, std::function<void()> work) {
  if (sticky_error() != cudaSuccess) return sticky_error();
  const StreamPtr s = stream_for_handle(stream);
  if (s == nullptr) return cudaErrorInvalidResourceHandle;
  enqueue(s, what, std::move(work));
  return cudaSuccess;
}

// ---- the stream and event API ----

namespace {

struct EventState {
  unsigned flags = 0;
  StreamPtr stream;  // null until recorded
  uint64_t seq = 0;
  std::shared_ptr<std::atomic<double>> when = std::make_shared<std::atomic<double>>(0.0);  // ms, at completion
};
std::mutex g_events_mu;
std::set<EventState*> g_events;

EventState* event_of(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(g_events_mu);
  auto* p = reinterpret_cast<EventState*>(e);
  return g_events.count(p) ? p : nullptr;
}

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

thread_local cudaError_t tl_last_error = cudaSuccess;

}  // namespace

// The error bookkeeping of every API call: a failure becomes the thread's last error; a sticky
// error is returned by every call once it is set.
cudaError_t api_result(cudaError_t e) {
  if (sticky_error() != cudaSuccess) e = sticky_error();
  // cudaErrorNotReady (a query of unfinished work) is an answer, not an error: the runtime does
  // not record it as the last error.
  if (e != cudaSuccess && e != cudaErrorNotReady) tl_last_error = e;
  return e;
}
cudaError_t take_last_error(bool clear) {
  const cudaError_t sticky = sticky_error();
  if (sticky != cudaSuccess) return sticky;
  const cudaError_t e = tl_last_error;
  if (clear) tl_last_error = cudaSuccess;
  return e;
}

}  // namespace gndet::cuda::emu

using namespace gndet::cuda::emu;

extern "C" {

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  if (stream == nullptr || (flags & ~unsigned{cudaStreamNonBlocking}) != 0) return api_result(cudaErrorInvalidValue);
  auto s = std::make_shared<StreamState>(false, (flags & cudaStreamNonBlocking) == 0);
  const auto handle = reinterpret_cast<cudaStream_t>(s.get());
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    registry().streams[handle] = s;
  }
  *stream = handle;
  return api_result(cudaSuccess);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  StreamPtr s;
  {
    std::lock_guard<std::mutex> lock(registry().mu);
    const auto it = registry().streams.find(stream);
    if (it == registry().streams.end()) return api_result(cudaErrorInvalidResourceHandle);
    s = it->second;
    registry().streams.erase(it);
  }
  // Queued work still runs (CUDA releases the stream once it is done); then the executor ends.
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->stopping = true;
  }
  s->work_cv.notify_all();
  if (s->executor.joinable()) s->executor.join();
  return api_result(cudaSuccess);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  const StreamPtr s = stream_for_handle(stream);
  if (s == nullptr) return api_result(cudaErrorInvalidResourceHandle);
  wait_until_done(s, last_issued(s));
  return api_result(cudaSuccess);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  const StreamPtr s = stream_for_handle(stream);
  if (s == nullptr) return api_result(cudaErrorInvalidResourceHandle);
  if (sticky_error() != cudaSuccess) return api_result(sticky_error());
  return is_done(s, last_issued(s)) ? cudaSuccess : api_result(cudaErrorNotReady);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  const StreamPtr s = stream_for_handle(stream);
  EventState* e = event_of(event);
  if (s == nullptr || e == nullptr) return api_result(cudaErrorInvalidResourceHandle);
  if (flags != 0) return api_result(cudaErrorInvalidValue);
  if (e->stream != nullptr && e->stream != s && !is_done(e->stream, e->seq)) {
    push(s, {"cudaStreamWaitEvent", {}, e->stream, e->seq});
  }
  return api_result(cudaSuccess);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (event == nullptr || (flags & ~unsigned{cudaEventBlockingSync | cudaEventDisableTiming}) != 0) {
    return api_result(cudaErrorInvalidValue);
  }
  auto* e = new EventState;
  e->flags = flags;
  {
    std::lock_guard<std::mutex> lock(g_events_mu);
    g_events.insert(e);
  }
  *event = reinterpret_cast<cudaEvent_t>(e);
  return api_result(cudaSuccess);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  EventState* e = event_of(event);
  const StreamPtr s = stream_for_handle(stream);
  if (e == nullptr || s == nullptr) return api_result(cudaErrorInvalidResourceHandle);
  if (sticky_error() != cudaSuccess) return api_result(sticky_error());
  auto when = e->when;
  e->stream = s;
  e->seq = enqueue(s, "cudaEventRecord", [when] { when->store(now_ms()); });
  return api_result(cudaSuccess);
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  EventState* e = event_of(event);
  if (e == nullptr) return api_result(cudaErrorInvalidResourceHandle);
  if (sticky_error() != cudaSuccess) return api_result(sticky_error());
  if (e->stream == nullptr || is_done(e->stream, e->seq)) return cudaSuccess;
  return api_result(cudaErrorNotReady);
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  EventState* e = event_of(event);
  if (e == nullptr) return api_result(cudaErrorInvalidResourceHandle);
  if (e->stream != nullptr) wait_until_done(e->stream, e->seq);
  return api_result(cudaSuccess);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  // The work the event captured goes on; streams waiting on it keep their own reference.
  auto* p = reinterpret_cast<EventState*>(event);
  {
    std::lock_guard<std::mutex> lock(g_events_mu);
    if (g_events.erase(p) == 0) return api_result(cudaErrorInvalidResourceHandle);
  }
  delete p;
  return api_result(cudaSuccess);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  EventState* a = event_of(start);
  EventState* b = event_of(end);
  if (ms == nullptr) return api_result(cudaErrorInvalidValue);
  if (a == nullptr || b == nullptr || (a->flags & cudaEventDisableTiming) || (b->flags & cudaEventDisableTiming)) {
    return api_result(cudaErrorInvalidResourceHandle);
  }
  if (a->stream == nullptr || b->stream == nullptr) return api_result(cudaErrorInvalidResourceHandle);
  if (!is_done(a->stream, a->seq) || !is_done(b->stream, b->seq)) return api_result(cudaErrorNotReady);
  // The host time between the two completions: a measure of the emulator, never of a GPU.
  *ms = static_cast<float>(b->when->load() - a->when->load());
  return api_result(cudaSuccess);
}

}  // extern "C"
