// The streaming merge: tensors are computed by worker threads (each tensor by one thread, so
// its bytes do not depend on the thread count) and written in file order by whichever worker
// holds the next one; at most 3 x threads tensors are in memory at once (computing, or
// finished and waiting for the writer); input pages are released after each tensor.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <thread>

#include "merge/methods.h"
#include "merge/plan.h"
#include "merge/task_vectors.h"
#include "safetensors/crc32.h"
#include "septa/error.h"

namespace septa::merge {

namespace {

// Per-worker buffers, grown to the largest tensor and reused.
struct Workspace {
  std::vector<float> base;                 // [n]
  std::vector<std::vector<float>> inputs;  // [m][n] models, then their task vectors
  std::vector<float> out;                  // [n]
  TaskVectorScratch task_vectors;
  std::string bytes;                       // the output tensor, encoded
  std::uint32_t crc = 0;
};

void grow(std::vector<float>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
}

void compute_tensor(const Plan& plan, const TensorJob& job, Workspace& ws) {
  const std::size_t n = job.out.numel();
  ws.bytes.resize(job.out.nbytes());
  if (job.copy) {
    const safetensors::Reader& reader = plan.reference->model().reader_of(job.name);
    const safetensors::TensorInfo& info = reader.tensor(job.name);
    std::copy_n(reinterpret_cast<const char*>(reader.data(info)), info.nbytes(), ws.bytes.data());
  } else if (plan.config.method == Method::kLinear || plan.config.method == Method::kSlerp) {
    const MergeConfig& c = plan.config;
    const std::size_t m = plan.inputs.size();
    ws.inputs.resize(std::max(ws.inputs.size(), m));
    grow(ws.out, n);
    std::vector<const float*> xs(m);
    std::vector<float> weights(m);
    for (std::size_t t = 0; t < m; ++t) {
      grow(ws.inputs[t], n);
      plan.inputs[t].source->load_f32(job.name, ws.inputs[t].data());
      xs[t] = ws.inputs[t].data();
      weights[t] = plan.inputs[t].weight;
    }
    if (plan.base) {
      grow(ws.base, n);
      plan.base->load_f32(job.name, ws.base.data());
    }
    if (c.method == Method::kLinear)
      linear_combination(xs, weights, plan.normalize, ws.out.data(), n);
    else
      slerp(*c.t, ws.base.data(), xs[0], ws.out.data(), n);
    safetensors::from_f32(job.out.dtype, ws.out.data(), n, ws.bytes.data());
  } else {
    // d_t = theta_t - theta_base, sparsified, then mixed: one fused kernel on the stored bytes
    // (task_vectors.h); LoRA-adapted tensors go through float32 buffers.
    const MergeConfig& c = plan.config;
    const std::size_t m = plan.inputs.size();
    ws.inputs.resize(std::max(ws.inputs.size(), m));
    auto operand = [&](const Source& source, std::vector<float>& buffer) {
      if (source.lora(job.name)) {
        grow(buffer, n);
        source.load_f32(job.name, buffer.data());
        return Operand{safetensors::Dtype::kF32, buffer.data()};
      }
      const safetensors::Reader& reader = source.model().reader_of(job.name);
      const safetensors::TensorInfo& info = reader.tensor(job.name);
      if (!safetensors::is_float(info.dtype))
        throw ModelError(reader.path() + ": tensor '" + job.name + "': dtype " +
                         safetensors::dtype_name(info.dtype) + " is not a floating type");
      return Operand{info.dtype, reader.data(info)};
    };
    std::vector<TaskVectorInput> inputs(m);
    for (std::size_t t = 0; t < m; ++t) {
      const Input& input = plan.inputs[t];
      inputs[t].values = operand(*input.source, ws.inputs[t]);
      inputs[t].weight = input.weight;
      inputs[t].keep = c.method == Method::kTies ? job.keep[t] : n;
      inputs[t].density = input.density;
      inputs[t].stream = dare_stream(job.name, input.config_index);
    }
    TaskVectorOptions options;
    options.trim = c.method == Method::kTies;
    options.dare = c.method == Method::kDareLinear || c.method == Method::kDareTies;
    options.consensus = c.method == Method::kTies || c.method == Method::kDareTies;
    options.normalize = plan.normalize;
    options.lambda = static_cast<float>(c.lambda);
    options.seed = c.seed;
    merge_task_vectors(operand(*plan.base, ws.base), inputs, options, n, job.out.dtype,
                       ws.bytes.data(), ws.task_vectors);
  }
  ws.crc = safetensors::crc32(0, ws.bytes.data(), ws.bytes.size());
  for (const auto& [spec, source] : plan.sources)
    if (source->find(job.name)) source->release(job.name);
}

bool is_directory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Output files of an earlier merge into the same directory that this one does not replace
// (shards of another count, an index beside a single file): they would mix with the new model.
void remove_stale_outputs(const std::string& dir, const std::vector<std::string>& written) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const bool ours = name == safetensors::kIndexFile || name == safetensors::kSingleFile ||
                      (name.rfind("model-", 0) == 0 && name.find("-of-") != std::string::npos &&
                       name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0);
    if (ours && std::find(written.begin(), written.end(), name) == written.end()) stale.push_back(name);
  }
  ::closedir(d);
  for (const auto& name : stale) ::unlink((dir + "/" + name).c_str());
}

}  // namespace

MergeResult run_merge(const MergeConfig& config, const std::string& out_dir, bool dry_run,
                      const std::function<bool(const MergeProgress&)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  const Plan plan = make_plan(config);
  MergeResult result;
  result.tensors = plan.tensors.size();
  result.input_bytes = plan.input_bytes;
  std::vector<safetensors::TensorSpec> specs;
  for (const TensorJob& job : plan.tensors) {
    specs.push_back(job.out);
    result.output_bytes += job.out.nbytes();
  }
  if (dry_run) {
    result.plan = describe(plan);
    return result;
  }
  if (out_dir.empty()) throw OptionError("no output directory");

  const bool created = !is_directory(out_dir);
  safetensors::Metadata metadata{{"format", "pt"}, {"septa.merge_method", method_name(config.method)}};
  std::size_t threads = config.threads > 0 ? static_cast<std::size_t>(config.threads)
                                           : std::max(1u, std::thread::hardware_concurrency());
  threads = std::max<std::size_t>(1, std::min(threads, plan.tensors.size()));

  try {
    safetensors::WriteOptions options;
    options.sync = config.sync;
    safetensors::ModelWriter writer(out_dir, specs, metadata, config.out_shard_size, options);
    std::atomic<std::size_t> next_job{0};
    std::mutex mutex;
    std::condition_variable turn;
    // Guarded by mutex: the next tensor to write; tensors computed but not yet written; their
    // buffers once written, for reuse; whether a worker is writing; the first error, which
    // stops every worker.
    std::size_t next_write = 0;
    struct Finished {
      std::string bytes;
      std::uint32_t crc;
    };
    std::map<std::size_t, Finished> ready;
    std::vector<std::string> spare;
    bool writing = false;
    std::exception_ptr error;
    // A worker starts tensor i only when i < next_write + window: at most window finished
    // tensors wait for the writer, and a worker never idles because an earlier, larger tensor
    // of another worker is still being computed.
    const std::size_t window = 2 * threads;
    MergeProgress state;
    state.tensors_total = plan.tensors.size();

    auto worker = [&]() {
      Workspace ws;
      while (true) {
        const std::size_t i = next_job.fetch_add(1);
        if (i >= plan.tensors.size()) return;
        try {
          {
            std::unique_lock<std::mutex> lock(mutex);
            turn.wait(lock, [&] { return i < next_write + window || error; });
            if (error) return;
          }
          compute_tensor(plan, plan.tensors[i], ws);
          std::unique_lock<std::mutex> lock(mutex);
          if (error) return;
          ready.emplace(i, Finished{std::move(ws.bytes), ws.crc});
          ws.bytes = std::string();
          if (!spare.empty()) {
            ws.bytes = std::move(spare.back());
            spare.pop_back();
          }
          if (writing) continue;  // that worker writes this one too when its turn comes
          writing = true;
          // Every tensor that is next in file order, written with the lock released.
          for (auto it = ready.find(next_write); it != ready.end(); it = ready.find(next_write)) {
            Finished finished = std::move(it->second);
            ready.erase(it);
            lock.unlock();
            writer.write_next(finished.bytes.data(), finished.bytes.size(), &finished.crc);
            lock.lock();
            ++next_write;
            state.tensors_done = next_write;
            state.bytes_written += finished.bytes.size();
            state.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            spare.push_back(std::move(finished.bytes));
            turn.notify_all();
            if (progress && !progress(state)) throw Cancelled("merge cancelled");
          }
          writing = false;
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex);
          if (!error) error = std::current_exception();
          turn.notify_all();
          return;
        }
      }
    };
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& thread : pool) thread.join();
    if (error) std::rethrow_exception(error);
    writer.commit();
    result.files = writer.file_names();
  } catch (...) {
    if (created) ::rmdir(out_dir.c_str());  // only if empty: the writers removed their files
    throw;
  }
  remove_stale_outputs(out_dir, result.files);
  return result;
}

}  // namespace septa::merge
