// septa merge benchmark: TIES over three synthetic F16 checkpoints (base + two fine-tunes).
//
//   merge_bench [--dir DIR] [--gb 1.0] [--tensors 200] [--threads 2] [--runs 3] [--keep]
//
//   merge_bench ... [--out-dir DIR]   (where the merges write; default DIR/out, DIR/out1)
//
// Reports, medians over --runs:
//   peak RSS of a merge (a child process per run, getrusage) / summed input size   (target <= 25%)
//   merge wall time / time to read the inputs once from a warm page cache          (target <= 2x)
// and checks that threads=1 and threads=N outputs are byte-identical. The read is timed three
// ways, so the comparison can be judged: read(2) into a reused 4 MB buffer on one thread (the
// baseline of the ratio), the same split over --threads threads, and mmap plus a touch of every
// 4 KiB page (what a memory-mapped reader pays before using a byte). A durable direct write of
// the output's size (O_DIRECT + fsync, the merge's output path) shows the disk's share.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "safetensors/safetensors.h"
#include "septa/merge.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace st = septa::safetensors;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Deterministic pseudo-normal values (sum of two uniforms, cheap) from a counter.
inline float noise(std::uint64_t key, std::uint64_t i) {
  std::uint64_t x = key * 0x9E3779B97F4A7C15ull + i;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x ^= x >> 31;
  const float u1 = static_cast<float>(x & 0xFFFFFF) / 16777216.0f;
  const float u2 = static_cast<float>((x >> 24) & 0xFFFFFF) / 16777216.0f;
  return u1 + u2 - 1.0f;
}

std::vector<st::TensorSpec> layout(double gb, int tensors) {
  // Row counts cycle through 0.5, 1, 1, 1.5 times the mean; 1024 columns; F16.
  const double mean_elements = gb * 1e9 / 2.0 / tensors;
  const double factors[4] = {0.5, 1.0, 1.0, 1.5};
  std::vector<st::TensorSpec> specs;
  for (int t = 0; t < tensors; ++t) {
    const auto rows = static_cast<std::int64_t>(mean_elements * factors[t % 4] / 1024.0);
    specs.push_back({"layers." + std::to_string(t / 4) + ".w" + std::to_string(t % 4), st::Dtype::kF16, {rows, 1024}});
  }
  return specs;
}

void generate(const std::string& path, const std::vector<st::TensorSpec>& specs, int model) {
  st::FileWriter writer(path, specs, {{"format", "pt"}}, st::WriteOptions{false, false});
  std::vector<float> values;
  std::vector<unsigned char> bytes;
  for (std::size_t t = 0; t < specs.size(); ++t) {
    const std::size_t n = specs[t].numel();
    values.resize(n);
    bytes.resize(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
      float v = 0.02f * noise(t, i);                                  // the base
      if (model > 0) v += 0.002f * noise(1000 * model + t, i);        // a fine-tune's delta
      values[i] = v;
    }
    st::from_f32(st::Dtype::kF16, values.data(), n, bytes.data());
    writer.write_next(bytes.data(), bytes.size());
  }
  writer.commit();
}

double cpu_seconds_of_self() {
  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec * 1e-6;
}

// Reads every file once with read(2) into a reused buffer; returns seconds.
double read_all(const std::vector<std::string>& files) {
  std::vector<char> buffer(1 << 22);
  const auto start = Clock::now();
  // (wall time: reading from the page cache is CPU-bound, one thread)
  for (const auto& file : files) {
    const int fd = ::open(file.c_str(), O_RDONLY);
    if (fd < 0) std::perror(file.c_str()), std::exit(1);
    while (::read(fd, buffer.data(), buffer.size()) > 0) {
    }
    ::close(fd);
  }
  return seconds_since(start);
}

// read(2) of the inputs' bytes split in `threads` contiguous ranges, one thread each; seconds.
double read_all_threads(const std::vector<std::string>& files, int threads) {
  struct Range {
    std::string file;
    off_t begin, end;
  };
  std::vector<std::vector<Range>> work(static_cast<std::size_t>(threads));
  off_t total = 0;
  std::vector<off_t> sizes;
  for (const auto& file : files) {
    struct stat st;
    ::stat(file.c_str(), &st);
    sizes.push_back(st.st_size);
    total += st.st_size;
  }
  const off_t share = (total + threads - 1) / threads;
  off_t position = 0;  // over the concatenated files
  for (std::size_t f = 0; f < files.size(); ++f)
    for (off_t begin = 0; begin < sizes[f];) {
      const std::size_t w = static_cast<std::size_t>(position / share);
      const off_t end = std::min(sizes[f], begin + (static_cast<off_t>(w + 1) * share - position));
      work[w].push_back({files[f], begin, end});
      position += end - begin;
      begin = end;
    }
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w)
    pool.emplace_back([&, w] {
      std::vector<char> buffer(1 << 22);
      for (const Range& range : work[static_cast<std::size_t>(w)]) {
        const int fd = ::open(range.file.c_str(), O_RDONLY);
        for (off_t at = range.begin; at < range.end;) {
          const ssize_t got = ::pread(fd, buffer.data(), std::min<off_t>(buffer.size(), range.end - at), at);
          if (got <= 0) break;
          at += got;
        }
        ::close(fd);
      }
    });
  for (auto& thread : pool) thread.join();
  return seconds_since(start);
}

// mmap of every input and a read of one byte per 4 KiB page, then munmap; seconds.
double map_and_touch(const std::vector<std::string>& files) {
  const auto start = Clock::now();
  unsigned sum = 0;
  for (const auto& file : files) {
    const int fd = ::open(file.c_str(), O_RDONLY);
    struct stat st;
    ::fstat(fd, &st);
    const auto size = static_cast<std::size_t>(st.st_size);
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) std::perror(file.c_str()), std::exit(1);
    const auto* bytes = static_cast<const volatile unsigned char*>(p);
    for (std::size_t i = 0; i < size; i += 4096) sum += bytes[i];
    ::munmap(p, size);
  }
  const double seconds = seconds_since(start);
  return sum == 0xFFFFFFFFu ? -seconds : seconds;
}

// `bytes` written to a new file in `dir` with O_DIRECT (8 MB writes) and fsync-ed, as the
// merge writes its output; seconds (-1 where the file system refuses direct I/O).
double direct_write(const std::string& dir, double bytes) {
  const std::string path = dir + "/direct_write.tmp";
  const std::size_t chunk = 8u << 20;
  void* buffer = nullptr;
  if (::posix_memalign(&buffer, 4096, chunk) != 0) std::exit(1);
  std::memset(buffer, 0x5A, chunk);
  const auto start = Clock::now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
  double seconds = -1;
  if (fd >= 0) {
    for (double done = 0; done < bytes; done += chunk)
      if (::write(fd, buffer, chunk) != static_cast<ssize_t>(chunk)) break;
    ::fsync(fd);
    ::close(fd);
    seconds = seconds_since(start);
  }
  std::remove(path.c_str());
  std::free(buffer);
  return seconds;
}

// The least streaming TIES needs: every input entry converted to float32 twice (once for the
// trim thresholds, once for the output), tensors spread over `threads` threads, no arithmetic
// and no output. Returns seconds.
double two_pass_floor(const std::vector<std::string>& files, int threads) {
  std::vector<st::Reader> readers;
  for (const auto& file : files) readers.push_back(st::Reader::open(file));
  const auto& tensors = readers[0].tensors();
  const auto start = Clock::now();
  std::vector<std::thread> pool;
  std::vector<double> sinks(static_cast<std::size_t>(threads), 0.0);
  for (int w = 0; w < threads; ++w)
    pool.emplace_back([&, w] {
      std::vector<float> block(2048);
      for (std::size_t t = static_cast<std::size_t>(w); t < tensors.size(); t += static_cast<std::size_t>(threads))
        for (int pass = 0; pass < 2; ++pass)
          for (const auto& reader : readers) {
            const st::TensorInfo& info = reader.tensor(tensors[t].name);
            const std::size_t n = info.numel();
            for (std::size_t begin = 0; begin < n; begin += block.size()) {
              const std::size_t len = std::min(block.size(), n - begin);
              st::to_f32(info.dtype, reader.data(info) + 2 * begin, len, block.data());
              sinks[static_cast<std::size_t>(w)] += block[0];
            }
          }
    });
  for (auto& thread : pool) thread.join();
  const double seconds = seconds_since(start);
  for (const auto& reader : readers)
    for (const auto& info : reader.tensors()) reader.release(info);
  return sinks[0] == 12345.678 ? -seconds : seconds;  // (keeps the sums alive)
}

struct RunResult {
  double seconds;
  double peak_rss_bytes;
  double cpu_seconds;  // user + system, all threads
};

RunResult merge_in_child(const septa::merge::MergeConfig& config, const std::string& out) {
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      septa::merge::run_merge(config, out);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "merge failed: %s\n", e.what());
      std::_Exit(1);
    }
    std::_Exit(0);
  }
  int status = 0;
  struct rusage usage;
  ::wait4(pid, &status, 0, &usage);
  const double elapsed = seconds_since(start);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) std::exit(1);
  const double cpu = usage.ru_utime.tv_sec + usage.ru_utime.tv_usec * 1e-6 + usage.ru_stime.tv_sec +
                     usage.ru_stime.tv_usec * 1e-6;
  return {elapsed, static_cast<double>(usage.ru_maxrss) * 1024.0, cpu};
}

bool same_file(const std::string& a, const std::string& b) {
  FILE* fa = std::fopen(a.c_str(), "rb");
  FILE* fb = std::fopen(b.c_str(), "rb");
  if (!fa || !fb) return false;
  std::vector<char> x(1 << 20), y(1 << 20);
  bool same = true;
  while (same) {
    const std::size_t n = std::fread(x.data(), 1, x.size(), fa);
    const std::size_t m = std::fread(y.data(), 1, y.size(), fb);
    same = n == m && std::memcmp(x.data(), y.data(), n) == 0;
    if (n == 0) break;
  }
  std::fclose(fa);
  std::fclose(fb);
  return same;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string dir = "merge_bench_data", out_dir;
  double gb = 1.0;
  int tensors = 200, threads = 2, runs = 3;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (arg == "--dir") dir = value();
    else if (arg == "--gb") gb = std::atof(value().c_str());
    else if (arg == "--tensors") tensors = std::atoi(value().c_str());
    else if (arg == "--threads") threads = std::atoi(value().c_str());
    else if (arg == "--runs") runs = std::atoi(value().c_str());
    else if (arg == "--keep") keep = true;
    else if (arg == "--out-dir") out_dir = value();
    else {
      std::fprintf(stderr, "usage: merge_bench [--dir DIR] [--gb G] [--tensors N] [--threads N] [--runs N] [--keep] [--out-dir DIR]\n");
      return 2;
    }
  }
  ::mkdir(dir.c_str(), 0755);
  if (out_dir.empty()) out_dir = dir;
  ::mkdir(out_dir.c_str(), 0755);
  const auto specs = layout(gb, tensors);
  std::vector<std::string> inputs = {dir + "/base.safetensors", dir + "/a.safetensors", dir + "/b.safetensors"};
  auto start = Clock::now();
  for (int m = 0; m < 3; ++m)
    if (::access(inputs[m].c_str(), R_OK) != 0) generate(inputs[m], specs, m);
  std::printf("inputs: 3 x %.3f GB F16, %d tensors, generated in %.1f s\n", gb, tensors, seconds_since(start));

  double input_bytes = 0;
  for (const auto& file : inputs) input_bytes += static_cast<double>(st::Reader::open(file).data_bytes());
  read_all(inputs);  // warm the page cache
  std::vector<double> reads, read_cpus, reads_threaded, touches, touch_cpus, writes, floors;
  for (int r = 0; r < runs; ++r) {
    double cpu = cpu_seconds_of_self();
    reads.push_back(read_all(inputs));
    read_cpus.push_back(cpu_seconds_of_self() - cpu);
    reads_threaded.push_back(read_all_threads(inputs, threads));
    cpu = cpu_seconds_of_self();
    touches.push_back(map_and_touch(inputs));
    touch_cpus.push_back(cpu_seconds_of_self() - cpu);
  }
  for (int r = 0; r < runs; ++r) floors.push_back(two_pass_floor(inputs, threads));

  septa::merge::MergeConfig config;
  config.method = septa::merge::Method::kTies;
  config.base_model = inputs[0];
  config.models = {{inputs[1], 1.0, 0.5}, {inputs[2], 0.5, 0.5}};
  config.threads = threads;
  std::vector<double> walls, rss, walls_nosync, cpus;
  for (int r = 0; r < runs; ++r) {
    config.sync = true;
    const RunResult result = merge_in_child(config, out_dir + "/out");
    walls.push_back(result.seconds);
    rss.push_back(result.peak_rss_bytes);
    cpus.push_back(result.cpu_seconds);
    config.sync = false;
    walls_nosync.push_back(merge_in_child(config, out_dir + "/out").seconds);
  }
  config.threads = 1;
  config.sync = false;
  const RunResult single = merge_in_child(config, out_dir + "/out1");
  const double output_bytes = static_cast<double>(st::Reader::open(out_dir + "/out/model.safetensors").data_bytes());
  for (int r = 0; r < runs; ++r) writes.push_back(direct_write(out_dir, output_bytes));
  const bool identical = same_file(out_dir + "/out/model.safetensors", out_dir + "/out1/model.safetensors");

  const double read_s = median(reads), wall_s = median(walls), peak = median(rss);
  std::printf("warm-cache read of the inputs (%.2f GB): median %.3f s over %d runs (CPU %.3f s)\n", input_bytes / 1e9,
              read_s, runs, median(read_cpus));
  std::printf("  the same read split over %d threads: median %.3f s; mmap + touch of every 4 KiB page: median %.3f s"
              " (CPU %.3f s)\n", threads, median(reads_threaded), median(touches), median(touch_cpus));
  std::printf("durable direct write (O_DIRECT + fsync) of the output's %.2f GB: median %.3f s = %.2fx the read\n",
              output_bytes / 1e9, median(writes), median(writes) / read_s);
  std::printf("two passes converting the inputs to float32 (TIES's least streaming), %d threads: median %.3f s = %.2fx the read\n",
              threads, median(floors), median(floors) / read_s);
  std::printf("TIES merge, %d threads: median %.3f s (runs:", threads, wall_s);
  for (const double w : walls) std::printf(" %.3f", w);
  std::printf("); 1 thread (--no-sync): %.3f s, CPU %.3f s\n", single.seconds, single.cpu_seconds);
  std::printf("TIES merge without fsync (--no-sync): median %.3f s (runs:", median(walls_nosync));
  for (const double w : walls_nosync) std::printf(" %.3f", w);
  std::printf(")\n");
  std::printf("CPU time of a merge (user + system, all threads): median %.3f s = %.2fx the read's CPU time"
              " (on 2 idle cores the wall time would be at least half of it)\n",
              median(cpus), median(cpus) / median(read_cpus));
  std::printf("peak RSS: median %.1f MB = %.1f%% of the summed input size (target <= 25%%)\n", peak / 1e6,
              100.0 * peak / input_bytes);
  std::printf("wall / read: %.2fx with fsync, %.2fx without (target <= 2x)\n", wall_s / read_s,
              median(walls_nosync) / read_s);
  std::printf("threads=1 and threads=%d outputs byte-identical: %s\n", threads, identical ? "yes" : "NO");
  if (!keep) {
    for (const auto& file : inputs) std::remove(file.c_str());
    for (const char* out : {"/out", "/out1"}) {
      std::remove((out_dir + out + "/model.safetensors").c_str());
      ::rmdir((out_dir + out).c_str());
    }
    ::rmdir(dir.c_str());
  }
  return identical ? 0 : 1;
}
