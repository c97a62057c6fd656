// Futex waits for JavaScript: synchronous ones on the calling thread, and asynchronous ones
// served by memmap's own waiter threads, never by libuv's pool (whose four threads every fs
// call of the process shares: four sleeping waiters would stall them all).
//
// A waiter thread sleeps in futex_waitv on up to kMaxWords - 1 words plus a control word of
// its own; adding or cancelling a wait changes the control word and wakes it. Results go back
// to the JavaScript thread that asked, through that thread's thread-safe function. More than
// kMaxWords - 1 pending waits start another waiter thread.
//
// Kernels before 5.16 have no futex_waitv (nor have container seccomp profiles older than it:
// the call answers ENOSYS). There each waiter thread serves one wait, asleep in FUTEX_WAIT on
// its word (with an absolute deadline), or on its control word when idle: it costs a thread
// per pending wait, but no CPU, and a wake reaches it as fast. Cancelling such a wait wakes
// every waiter of its word once, since no other wake is sure to reach this thread: a spurious
// wake-up, which futex waits allow and every memmap wait absorbs.
#include "waiter.h"

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "../os/futex.h"
#include "glue.h"

namespace memmap {

namespace {

// Per JavaScript thread (main or worker): where results are delivered.
struct EnvState {
  napi_threadsafe_function tsfn = nullptr;
  int pending = 0;  // waits outstanding, JavaScript thread only
  // Set by the environment's cleanup on its own thread, read by the waiter threads.
  std::atomic<bool> closing{false};
};

struct Result {
  double id;
  int status;  // 0 woken or value changed, -ETIMEDOUT, -EFAULT, ...
  uint32_t* word;  // to pass a wake on when nobody takes the result
};

struct Wait {
  uint32_t* word;
  uint32_t expected;
  int64_t deadline;  // absolute CLOCK_MONOTONIC ns, or -1
  double id;
  EnvState* env;
};

struct WaiterThread {
  std::mutex mutex;
  std::vector<Wait> waits;  // at most mm::kMaxWords - 1
  uint32_t control = 0;  // changed (and woken) whenever `waits` changes
  // A wait was taken off since the thread last built its list: without futex_waitv it may
  // still be asleep on that wait's word (up to its one-second slice) and would not see a new
  // wait, so none is given to it until it has looked again.
  bool stale = false;
};

// The waiter threads run for the life of the process, detached, and exit() does not stop
// them: the table they use is never freed, so that no static destructor frees it under them.
std::mutex& g_threads_mutex = *new std::mutex();
std::vector<std::unique_ptr<WaiterThread>>& g_threads = *new std::vector<std::unique_ptr<WaiterThread>>();

// A wake that the waiter thread consumed for a wait whose result nobody will take (cancelled,
// or its environment gone) goes on to the next waiter of the word, so that it is not lost.
// The word may have been unmapped meanwhile: the kernel then answers EFAULT, nothing is read.
void pass_on(uint32_t* word) { mm::word_wake(word, 1); }

void deliver(const Wait& wait, int status) {
  if (wait.env->closing.load(std::memory_order_acquire)) {
    if (status == 0) pass_on(wait.word);
    return;
  }
  Result* result = new Result{wait.id, status, wait.word};
  if (napi_call_threadsafe_function(wait.env->tsfn, result, napi_tsfn_nonblocking) != napi_ok) {
    if (status == 0) pass_on(wait.word);
    delete result;
  }
}

// Whether the kernel has futex_waitv: asked once, with a word that does not hold the value
// expected (EAGAIN: it has; ENOSYS: it has not).
bool has_waitv() {
  static const bool known = [] {
    uint32_t word = 1;
    uint32_t* words[1] = {&word};
    uint32_t expected[1] = {0};
    return mm::words_wait(words, expected, 1, -1) != -ENOSYS;
  }();
  return known;
}

// How many waits one waiter thread serves.
size_t capacity() { return has_waitv() ? mm::kMaxWords - 1 : 1; }

// Changes the control word so that the waiter's next futex_waitv sees a new value, and wakes it.
void poke(WaiterThread* w) {
  __atomic_add_fetch(&w->control, 1, __ATOMIC_SEQ_CST);
  mm::word_wake(&w->control, 1);
}

// After a wait on `word` was taken off `w`: wakes the thread, wherever it sleeps.
void interrupt(WaiterThread* w, uint32_t* word) {
  w->stale = true;
  poke(w);
  if (!has_waitv()) mm::word_wake(word, INT_MAX);
}

// One sleep of a waiter thread without futex_waitv, answering as words_wait would.
// It sleeps in one-second slices: a wait taken off its list just before it went to sleep on
// the word (whose memory was then closed, so that no wake comes) costs it a second, not the
// thread.
int wait_one(uint32_t* const* words, const uint32_t* expected, size_t count, int64_t deadline) {
  int64_t slice = mm::monotonic_ns() + 1000000000LL;
  if (count > 1 && (deadline < 0 || deadline > slice)) deadline = slice;
  int rc = mm::word_wait_until(words[count - 1], expected[count - 1], deadline);
  return rc == 0 ? static_cast<int>(count - 1) : rc;
}

void serve(WaiterThread* w) {
  uint32_t* words[mm::kMaxWords];
  uint32_t expected[mm::kMaxWords];
  double ids[mm::kMaxWords];
  EnvState* envs[mm::kMaxWords];
  for (;;) {
    size_t count = 1;
    int64_t deadline = -1;
    {
      std::lock_guard<std::mutex> lock(w->mutex);
      w->stale = false;
      words[0] = &w->control;
      expected[0] = __atomic_load_n(&w->control, __ATOMIC_SEQ_CST);
      for (const Wait& wait : w->waits) {
        words[count] = wait.word;
        expected[count] = wait.expected;
        ids[count] = wait.id;
        envs[count] = wait.env;
        count++;
        if (wait.deadline >= 0 && (deadline < 0 || wait.deadline < deadline)) deadline = wait.deadline;
      }
    }
    int rc = has_waitv() ? mm::words_wait(words, expected, count, deadline) : wait_one(words, expected, count, deadline);
    std::lock_guard<std::mutex> lock(w->mutex);
    int64_t now = mm::monotonic_ns();
    // A failure that is not about one word ends every wait of this thread with it: an error
    // is never swallowed (nor retried in a loop that would burn a core).
    bool failed = rc < 0 && rc != -EAGAIN && rc != -ETIMEDOUT && rc != -EINTR && rc != -EFAULT;
    // The wait the kernel woke, if any (by its id: the list may have changed meanwhile).
    bool woken_found = rc < 1;
    for (size_t i = 0; i < w->waits.size();) {
      const Wait& wait = w->waits[i];
      bool woken = rc >= 1 && wait.id == ids[rc] && wait.env == envs[rc];
      if (woken) woken_found = true;
      // Asks the kernel whether the word still holds the expected value, without reading the
      // memory here: if it was unmapped meanwhile, the answer is EFAULT, not a crash.
      int still = woken ? 0 : mm::word_wait(wait.word, wait.expected, 0);
      int status = 1;  // 1: keep waiting
      if (failed) status = rc;
      else if (woken) status = 0;
      else if (still == -EAGAIN) status = 0;
      else if (still == -EFAULT) status = -EFAULT;
      else if (wait.deadline >= 0 && now >= wait.deadline) status = -ETIMEDOUT;
      if (status == 1) {
        i++;
        continue;
      }
      deliver(wait, status);
      w->waits.erase(w->waits.begin() + static_cast<std::ptrdiff_t>(i));
    }
    // Woken for a wait cancelled before this thread got to it: the wake goes on.
    if (!woken_found) pass_on(words[rc]);
  }
}

// Starts a detached thread running serve(w): 0, or the errno pthread_create gave. A small
// stack: serve keeps one futex_waitv list (kMaxWords entries) and little else (1 MiB leaves
// room for the frames of a sanitizer build).
int start_thread(WaiterThread* w) {
  pthread_attr_t attr;
  int rc = pthread_attr_init(&attr);
  if (rc != 0) return rc;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 1024 * 1024);
  pthread_t thread;
  rc = pthread_create(
      &thread, &attr,
      [](void* arg) -> void* {
        serve(static_cast<WaiterThread*>(arg));
        return nullptr;
      },
      w);
  pthread_attr_destroy(&attr);
  return rc;
}

void call_js(napi_env env, napi_value dispatch, void* context, void* data) {
  Result* result = static_cast<Result*>(data);
  EnvState* state = static_cast<EnvState*>(context);
  if (env == nullptr || dispatch == nullptr) {
    // The environment is going away with this result undelivered.
    if (result->status == 0) pass_on(result->word);
  } else {
    if (--state->pending == 0) napi_unref_threadsafe_function(env, state->tsfn);
    napi_value args[2], undefined = nullptr;
    napi_create_double(env, result->id, &args[0]);
    napi_create_int32(env, result->status, &args[1]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, dispatch, 2, args, nullptr);
  }
  delete result;
}

// Removes the waits of an environment that is going away (a worker exiting).
void cleanup(void* arg) {
  EnvState* state = static_cast<EnvState*>(arg);
  state->closing.store(true, std::memory_order_release);
  std::lock_guard<std::mutex> threads(g_threads_mutex);
  for (auto& w : g_threads) {
    std::lock_guard<std::mutex> lock(w->mutex);
    for (size_t i = 0; i < w->waits.size();) {
      if (w->waits[i].env == state) {
        uint32_t* word = w->waits[i].word;
        w->waits.erase(w->waits.begin() + static_cast<std::ptrdiff_t>(i));
        interrupt(w.get(), word);
      } else {
        i++;
      }
    }
    poke(w.get());
  }
  napi_release_threadsafe_function(state->tsfn, napi_tsfn_abort);
  // The EnvState itself is left: a waiter thread may still be between a lookup and a call;
  // it is a few bytes per environment that ever waited.
}

EnvState* env_state(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<EnvState*>(data);
}

// Reads (typedArray, index) into the address of a 32-bit element.
bool get_word(napi_env env, napi_value array, napi_value index, uint32_t** out) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  uint64_t i = 0;
  if (napi_get_typedarray_info(env, array, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      (type != napi_int32_array && type != napi_uint32_array) || !get_size(env, index, &i) ||
      i >= length || data == nullptr) {
    fail(env, "futex expects an Int32Array and an index inside it");
    return false;
  }
  *out = static_cast<uint32_t*>(data) + i;
  return true;
}

}  // namespace

// Whether the environment may still run JavaScript: false once worker.terminate() or
// process.exit() began to tear it down. Optimised JavaScript loops around a native call may
// never check for termination themselves, so a sync wait asks before each sleep and ends
// (-ECANCELED) instead of sleeping again. napi_coerce_to_bool is one of the calls that check.
bool can_run_js(napi_env env) {
  napi_value value = nullptr, result = nullptr;
  napi_get_undefined(env, &value);
  return napi_coerce_to_bool(env, value, &result) == napi_ok;
}

// waiterInit(dispatch): sets this thread's result callback, dispatch(id, status).
napi_value js_waiter_init(napi_env env, napi_callback_info info) {
  napi_value argv[1], name = nullptr;
  if (!get_args(env, info, 1, argv)) return nullptr;
  EnvState* state = new EnvState();
  napi_create_string_utf8(env, "memmap.wait", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], nullptr, name, 0, 1, nullptr, nullptr, state, call_js,
                                      &state->tsfn) != napi_ok) {
    delete state;
    return fail(env, "could not create the waiter's callback");
  }
  napi_unref_threadsafe_function(env, state->tsfn);
  napi_set_instance_data(env, state, nullptr, nullptr);
  napi_add_env_cleanup_hook(env, cleanup, state);
  return make_undefined(env);
}

// futexWait(array, index, expected, timeoutNs) -> 0 | -EAGAIN | -ETIMEDOUT | -EINTR | -errno.
napi_value js_futex_wait(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint32_t* word = nullptr;
  int32_t expected = 0;
  double timeout = -1;
  if (!get_args(env, info, 4, argv) || !get_word(env, argv[0], argv[1], &word) ||
      !get_int(env, argv[2], &expected) || napi_get_value_double(env, argv[3], &timeout) != napi_ok) {
    return nullptr;
  }
  if (!can_run_js(env)) return make_int(env, -ECANCELED);
  return make_int(env, mm::word_wait(word, static_cast<uint32_t>(expected), mm::timeout_ns(timeout)));
}

// futexWake(array, index, count) -> woken | -errno.
napi_value js_futex_wake(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint32_t* word = nullptr;
  int32_t count = 0;
  if (!get_args(env, info, 3, argv) || !get_word(env, argv[0], argv[1], &word) ||
      !get_int(env, argv[2], &count)) {
    return nullptr;
  }
  return make_int(env, mm::word_wake(word, count));
}

// futexWaitAsync(array, index, expected, timeoutNs, id) -> 0 (queued) | -errno.
// The caller keeps `array` alive until the result for `id` arrives.
napi_value js_futex_wait_async(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  uint32_t* word = nullptr;
  int32_t expected = 0;
  double timeout = -1, id = 0;
  if (!get_args(env, info, 5, argv) || !get_word(env, argv[0], argv[1], &word) ||
      !get_int(env, argv[2], &expected) || napi_get_value_double(env, argv[3], &timeout) != napi_ok ||
      napi_get_value_double(env, argv[4], &id) != napi_ok) {
    return nullptr;
  }
  EnvState* state = env_state(env);
  if (state == nullptr) return fail(env, "waiterInit was not called");
  int64_t ns = mm::timeout_ns(timeout);
  int64_t deadline = ns < 0 ? -1 : mm::monotonic_ns() + ns;
  Wait wait{word, static_cast<uint32_t>(expected), deadline, id, state};
  std::lock_guard<std::mutex> threads(g_threads_mutex);
  WaiterThread* chosen = nullptr;
  for (auto& w : g_threads) {
    std::lock_guard<std::mutex> lock(w->mutex);
    if (w->waits.size() < capacity() && !(w->stale && !has_waitv())) {
      w->waits.push_back(wait);
      chosen = w.get();
      break;
    }
  }
  if (chosen == nullptr) {
    auto fresh = std::make_unique<WaiterThread>();
    fresh->waits.push_back(wait);
    chosen = fresh.get();
    // The thread runs for the life of the process, detached; it sleeps in the kernel when
    // idle. pthread_create rather than std::thread: when the system refuses another thread
    // (threads-max, RLIMIT_NPROC, memory for a stack) that is this wait's error, where
    // std::thread would throw into code built without exceptions and abort the process.
    int rc = start_thread(chosen);
    if (rc != 0) return make_int(env, -rc);
    g_threads.push_back(std::move(fresh));
  }
  if (state->pending++ == 0) napi_ref_threadsafe_function(env, state->tsfn);
  poke(chosen);
  return make_int(env, 0);
}

// futexCancel(id): forgets a pending wait (its result is never delivered).
napi_value js_futex_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  double id = 0;
  if (!get_args(env, info, 1, argv) || napi_get_value_double(env, argv[0], &id) != napi_ok) return nullptr;
  EnvState* state = env_state(env);
  std::lock_guard<std::mutex> threads(g_threads_mutex);
  for (auto& w : g_threads) {
    std::lock_guard<std::mutex> lock(w->mutex);
    for (size_t i = 0; i < w->waits.size(); i++) {
      if (w->waits[i].id == id && w->waits[i].env == state) {
        uint32_t* word = w->waits[i].word;
        w->waits.erase(w->waits.begin() + static_cast<std::ptrdiff_t>(i));
        if (--state->pending == 0) napi_unref_threadsafe_function(env, state->tsfn);
        interrupt(w.get(), word);
        return make_int(env, 1);
      }
    }
  }
  return make_int(env, 0);
}

void waiter_forget_range(const void* base, size_t size) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(base);
  std::lock_guard<std::mutex> threads(g_threads_mutex);
  for (auto& w : g_threads) {
    std::lock_guard<std::mutex> lock(w->mutex);
    bool changed = false;
    for (size_t i = 0; i < w->waits.size();) {
      const uintptr_t at = reinterpret_cast<uintptr_t>(w->waits[i].word);
      if (at - begin < size) {
        // The waiter thread may be asleep on this word, or about to be: the poke below changes
        // its control word, so its sleep ends (or does not begin) and it rebuilds its list
        // without the word. Without futex_waitv it sleeps on the word itself, which the wake
        // reaches while the range is still mapped.
        deliver(w->waits[i], kWaitClosed);
        uint32_t* word = w->waits[i].word;
        w->waits.erase(w->waits.begin() + static_cast<std::ptrdiff_t>(i));
        interrupt(w.get(), word);
        // A wake this thread's waiter already took for the word (from another process's
        // unlock, say) would be passed on after the range is gone, to nobody: every waiter of
        // the word is woken now instead, while it is mapped. Futex waits absorb the extra.
        mm::word_wake(word, INT_MAX);
        changed = true;
      } else {
        i++;
      }
    }
    if (changed) poke(w.get());
  }
}

// threadIds() -> [pid, tid] of the calling JavaScript thread.
napi_value js_thread_ids(napi_env env, napi_callback_info) {
  napi_value result = nullptr;
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, make_int(env, mm::process_id()));
  napi_set_element(env, result, 1, make_int(env, mm::thread_id()));
  return result;
}

// waiterThreads() -> how many waiter threads exist, for tests.
napi_value js_waiter_threads(napi_env env, napi_callback_info) {
  std::lock_guard<std::mutex> threads(g_threads_mutex);
  return make_int(env, static_cast<int64_t>(g_threads.size()));
}

}  // namespace memmap
