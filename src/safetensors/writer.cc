// safetensors writing: header encoding, streamed files with checksums, shards and the index.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <string_view>

#include "safetensors/crc32.h"
#include "safetensors/json.h"
#include "safetensors/safetensors.h"
#include "safetensors/direct_stream.h"
#include "safetensors/file_io.h"
#include "septa/error.h"

namespace septa::safetensors {

namespace {

constexpr const char* kChecksumPlaceholder = "crc32:00000000";

std::string crc_string(std::uint32_t crc) {
  char text[16];
  std::snprintf(text, sizeof text, "crc32:%08x", crc);
  return text;
}

}  // namespace

std::string encode_header(const std::vector<TensorSpec>& specs, const Metadata& metadata) {
  std::string text = "{";
  bool first = true;
  if (!metadata.empty()) {
    text += "\"__metadata__\":{";
    for (auto it = metadata.begin(); it != metadata.end(); ++it) {
      if (it != metadata.begin()) text += ',';
      text += json::quote(it->first) + ':' + json::quote(it->second);
    }
    text += '}';
    first = false;
  }
  std::uint64_t offset = 0;
  for (const auto& spec : specs) {
    if (spec.name == "__metadata__") throw ModelError("tensor name '__metadata__' is reserved");
    for (const std::int64_t d : spec.shape)
      if (d < 0) throw ModelError("tensor '" + spec.name + "': negative dimension in shape " + shape_string(spec.shape));
    if (!first) text += ',';
    first = false;
    const std::uint64_t end = offset + spec.nbytes();
    text += json::quote(spec.name) + ":{\"dtype\":\"" + dtype_name(spec.dtype) + "\",\"shape\":" +
            shape_string(spec.shape) + ",\"data_offsets\":[" + std::to_string(offset) + "," +
            std::to_string(end) + "]}";
    offset = end;
  }
  text += '}';
  while (text.size() % 8 != 0) text += ' ';
  std::string header(8, '\0');
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) header[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return header + text;
}

FileWriter::FileWriter(std::string path, std::vector<TensorSpec> specs, Metadata metadata,
                       WriteOptions options)
    : path_(std::move(path)), specs_(std::move(specs)), metadata_(std::move(metadata)), options_(options) {
  if (options_.checksum) metadata_[kChecksumKey] = kChecksumPlaceholder;
  std::set<std::string_view> names;
  for (const auto& spec : specs_)
    if (!names.insert(spec.name).second) throw ModelError(path_ + ": tensor '" + spec.name + "' added twice");
  std::string header = encode_header(specs_, metadata_);
  temporary_ = path_ + ".tmp." + std::to_string(::getpid());
  std::uint64_t data_bytes = 0;
  for (const auto& spec : specs_) data_bytes += spec.nbytes();
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  if (options_.direct && data_bytes >= options_.direct_min_bytes) {
    fd_ = ::open(temporary_.c_str(), flags | O_DIRECT, 0644);  // EINVAL where unsupported (tmpfs)
    direct_ = fd_ >= 0;
  }
  if (fd_ < 0) fd_ = ::open(temporary_.c_str(), flags, 0644);
  if (fd_ < 0) throw IoError(path_ + ": cannot create: " + std::strerror(errno));
  crc_ = static_cast<std::uint32_t>(::crc32(0L, Z_NULL, 0));
  offset_ = header.size();
  if (direct_)
    header_ = std::move(header);
  else
    write_all(header.data(), header.size(), 0);
}

FileWriter::~FileWriter() {
  stream_.reset();  // (joins its thread before the descriptor closes)
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temporary_.empty()) ::unlink(temporary_.c_str());
}

void FileWriter::write_all(const void* bytes, std::size_t nbytes, std::uint64_t offset) {
  const auto* p = static_cast<const char*>(bytes);
  while (nbytes > 0) {
    const ssize_t n = ::pwrite(fd_, p, std::min<std::size_t>(nbytes, 1u << 30), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw IoError(path_ + ": write failed: " + std::strerror(errno));
    }
    p += n;
    nbytes -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

void FileWriter::write_next(const void* bytes, std::size_t nbytes, const std::uint32_t* crc) {
  if (finished_) throw InternalError(path_ + ": write after finish");
  if (next_ >= specs_.size())
    throw InternalError(path_ + ": more tensors written than declared (" + std::to_string(specs_.size()) + ")");
  const TensorSpec& spec = specs_[next_];
  if (nbytes != spec.nbytes())
    throw InternalError(path_ + ": tensor '" + spec.name + "': " + std::to_string(nbytes) +
                        " bytes given, its header declares " + std::to_string(spec.nbytes()));
  if (direct_) {
    if (!stream_) {
      stream_ = std::make_unique<DirectStream>(fd_, path_);
      stream_->append(header_.data(), header_.size());
    }
    stream_->append(bytes, nbytes);
  } else {
    write_all(bytes, nbytes, offset_);
  }
  if (options_.checksum) {
    const std::uint32_t piece = crc ? *crc : safetensors::crc32(0, bytes, nbytes);
    crc_ = static_cast<std::uint32_t>(::crc32_combine(crc_, piece, static_cast<z_off_t>(nbytes)));
  }
  offset_ += nbytes;
  ++next_;
}

void FileWriter::finish() {
  if (finished_) return;
  if (next_ != specs_.size())
    throw InternalError(path_ + ": " + std::to_string(next_) + " of " + std::to_string(specs_.size()) +
                        " tensors written");
  if (direct_) {
    // The last block went out zero-padded: cut the file to its size, then go back to the
    // page cache for the header (unaligned) and the rest.
    if (stream_) {
      stream_->flush();
      stream_.reset();
    }
    const int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0)
      throw IoError(path_ + ": write failed: " + std::strerror(errno));
    direct_ = false;
    if (::ftruncate(fd_, static_cast<off_t>(offset_)) != 0)
      throw IoError(path_ + ": write failed: " + std::strerror(errno));
    if (!options_.checksum) write_all(header_.data(), header_.size(), 0);  // (no tensor may have come)
  }
  if (options_.checksum) {
    metadata_[kChecksumKey] = crc_string(crc_);
    const std::string header = encode_header(specs_, metadata_);  // same length as the placeholder's
    write_all(header.data(), header.size(), 0);
  }
  if (options_.sync && ::fsync(fd_) != 0) throw IoError(path_ + ": write failed: " + std::strerror(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw IoError(path_ + ": write failed: " + std::strerror(errno));
  finished_ = true;
}

void FileWriter::commit() {
  finish();
  if (committed_) return;
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0)
    throw IoError(path_ + ": cannot rename the temporary file into place: " + std::strerror(errno));
  committed_ = true;
}

std::vector<std::size_t> plan_shards(const std::vector<TensorSpec>& specs, std::uint64_t max_shard_bytes) {
  std::vector<std::size_t> begins{0};
  if (max_shard_bytes == 0) return begins;
  std::uint64_t used = 0;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const std::uint64_t bytes = specs[i].nbytes();
    if (used > 0 && used + bytes > max_shard_bytes) {
      begins.push_back(i);
      used = 0;
    }
    used += bytes;
  }
  return begins;
}

std::string shard_file_name(std::size_t shard, std::size_t count) {
  char name[64];
  std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", shard + 1, count);
  return name;
}

ModelWriter::ModelWriter(std::string dir, std::vector<TensorSpec> specs, Metadata metadata,
                         std::uint64_t max_shard_bytes, WriteOptions options)
    : dir_(std::move(dir)), specs_(std::move(specs)), metadata_(std::move(metadata)), options_(options) {
  shard_begin_ = plan_shards(specs_, max_shard_bytes);
  struct stat st;
  if (::stat(dir_.c_str(), &st) != 0) {
    if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST)
      throw IoError(dir_ + ": cannot create the output directory: " + std::strerror(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    throw IoError(dir_ + ": exists and is not a directory");
  }
  const std::vector<std::string> names = file_names();
  for (std::size_t s = 0; s < shard_begin_.size(); ++s) {
    const std::size_t end = s + 1 < shard_begin_.size() ? shard_begin_[s + 1] : specs_.size();
    std::vector<TensorSpec> part(specs_.begin() + shard_begin_[s], specs_.begin() + end);
    shards_.push_back(std::make_unique<FileWriter>(dir_ + "/" + names[s], std::move(part), metadata_, options_));
  }
}

ModelWriter::~ModelWriter() = default;

std::vector<std::string> ModelWriter::file_names() const {
  const std::size_t count = shard_begin_.size();
  if (count == 1) return {kSingleFile};
  std::vector<std::string> names;
  for (std::size_t s = 0; s < count; ++s) names.push_back(shard_file_name(s, count));
  names.push_back(kIndexFile);
  return names;
}

void ModelWriter::write_next(const void* bytes, std::size_t nbytes, const std::uint32_t* crc) {
  while (current_ < shards_.size() && shards_[current_]->next() == shards_[current_]->specs().size()) {
    shards_[current_]->finish();
    ++current_;
  }
  if (current_ >= shards_.size()) throw InternalError(dir_ + ": more tensors written than declared");
  shards_[current_]->write_next(bytes, nbytes, crc);
}

void ModelWriter::commit() {
  for (auto& shard : shards_) shard->finish();
  for (auto& shard : shards_) shard->commit();
  if (shards_.size() == 1) return;
  std::string text = "{\n  \"metadata\": {\"total_size\": ";
  std::uint64_t total = 0;
  for (const auto& spec : specs_) total += spec.nbytes();
  text += std::to_string(total) + "},\n  \"weight_map\": {";
  const std::vector<std::string> names = file_names();
  for (std::size_t s = 0; s < shards_.size(); ++s)
    for (const auto& spec : shards_[s]->specs()) {
      text += (text.back() == '{' ? "\n    " : ",\n    ") + json::quote(spec.name) + ": " + json::quote(names[s]);
    }
  text += "\n  }\n}\n";
  write_text_atomically(dir_ + "/" + kIndexFile, text);
}

void Writer::add(const std::string& name, Dtype dtype, std::vector<std::int64_t> shape,
                 const void* bytes, std::size_t nbytes) {
  TensorSpec spec{name, dtype, std::move(shape)};
  for (const auto& other : specs_)
    if (other.name == name) throw ModelError("tensor '" + name + "' added twice");
  if (spec.nbytes() != nbytes)
    throw ModelError("tensor '" + name + "': " + dtype_name(dtype) + " shape " + shape_string(spec.shape) +
                     " needs " + std::to_string(spec.nbytes()) + " bytes, " + std::to_string(nbytes) + " given");
  bytes_.emplace_back(static_cast<const char*>(bytes), nbytes);
  specs_.push_back(std::move(spec));
}

void Writer::add_f32(const std::string& name, std::vector<std::int64_t> shape, const float* values, Dtype dtype) {
  TensorSpec spec{name, dtype, shape};
  std::string bytes(spec.nbytes(), '\0');
  from_f32(dtype, values, spec.numel(), bytes.data());
  add(name, dtype, std::move(shape), bytes.data(), bytes.size());
}

void Writer::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

void Writer::write(const std::string& path, WriteOptions options) const {
  FileWriter file(path, specs_, metadata_, options);
  for (const auto& bytes : bytes_) file.write_next(bytes.data(), bytes.size());
  file.commit();
}

void Writer::write_model(const std::string& dir, std::uint64_t max_shard_bytes, WriteOptions options) const {
  ModelWriter model(dir, specs_, metadata_, max_shard_bytes, options);
  for (const auto& bytes : bytes_) model.write_next(bytes.data(), bytes.size());
  model.commit();
}

}  // namespace septa::safetensors
