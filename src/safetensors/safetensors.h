// safetensors files: a strict, memory-mapped reader and streaming, atomic writers.
//
// Format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of JSON
//   {"<tensor>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"<key>": "<string value>", ...}}
// padded with spaces, then the data section: each tensor's row-major little-endian bytes at
// [begin, end) relative to the section's start, contiguous, without holes or overlaps.
// A sharded model is a directory of model-0000i-of-0000N.safetensors files plus
// model.safetensors.index.json = {"metadata": {"total_size": bytes}, "weight_map": {tensor: file}}.
//
// Checksums: septa's writers put "septa.checksum" = "crc32:<8 hex digits>" (zlib's CRC-32 of the
// data section) into __metadata__; Reader::verify_checksum() checks it when present. Files from
// other tools have no such key and load all the same.
//
// Errors: a malformed, truncated or foreign file throws septa::ModelError, a file that cannot be
// opened, read or written throws septa::IoError; every message starts with the file name and
// names the tensor concerned ("a.safetensors: tensor 'w': shape [2, 3] needs 24 bytes, ...").
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "safetensors/dtype.h"

namespace septa::safetensors {

using Metadata = std::map<std::string, std::string>;

constexpr const char* kChecksumKey = "septa.checksum";
constexpr const char* kIndexFile = "model.safetensors.index.json";
constexpr const char* kSingleFile = "model.safetensors";
// Headers larger than this are refused (as the reference implementation does).
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

struct TensorSpec {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<std::int64_t> shape;

  std::uint64_t numel() const;
  std::uint64_t nbytes() const { return numel() * dtype_size(dtype); }
};

struct TensorInfo : TensorSpec {
  std::uint64_t begin = 0;  // byte range in the data section
  std::uint64_t end = 0;
};

// "[2, 3]"
std::string shape_string(const std::vector<std::int64_t>& shape);

// One safetensors file, opened read-only. Tensor data are views into a private mapping (or
// an owned copy for from_bytes); the Reader must outlive them. Cheap to move, not to copy.
class Reader {
 public:
  // Memory-maps `path` and validates its header.
  static Reader open(const std::string& path);
  // Validates and keeps a copy of `bytes`; `label` names it in errors (the fuzzers' entry).
  static Reader from_bytes(std::string_view bytes, const std::string& label = "<memory>");

  const std::string& path() const { return label_; }
  // In data-offset order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(std::string_view name) const;
  // Throws ModelError "<file>: no tensor '<name>'" when absent.
  const TensorInfo& tensor(std::string_view name) const;
  const Metadata& metadata() const { return metadata_; }
  std::uint64_t header_bytes() const { return header_bytes_; }  // 8 + N
  std::uint64_t data_bytes() const { return data_bytes_; }

  // The tensor's raw bytes (info.nbytes() of them, not necessarily aligned).
  const unsigned char* data(const TensorInfo& info) const;
  // The tensor converted to float32; ModelError for non-float dtypes.
  std::vector<float> read_f32(std::string_view name) const;
  void read_f32(const TensorInfo& info, float* out) const;
  // Lets the kernel drop this tensor's pages from the process (MADV_DONTNEED on the mapping):
  // the page cache keeps them, resident memory does not. No-op for from_bytes readers.
  void release(const TensorInfo& info) const;

  // True when the file carries a checksum and it matches; false when it carries none; throws
  // ModelError when it does not match or is malformed.
  bool verify_checksum() const;

 private:
  struct Storage;
  void parse();
  std::shared_ptr<Storage> storage_;
  std::string label_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
  Metadata metadata_;
  std::uint64_t header_bytes_ = 0;
  std::uint64_t data_bytes_ = 0;
};

// The header bytes (8-byte length + padded JSON) for `specs` laid out contiguously in order.
std::string encode_header(const std::vector<TensorSpec>& specs, const Metadata& metadata);

struct WriteOptions {
  bool checksum = true;  // add "septa.checksum" to __metadata__
  bool sync = true;      // fsync before the rename
  // Files with at least direct_min_bytes of tensor data are streamed past the page cache
  // (O_DIRECT, see direct_stream.h) where the file system allows it.
  bool direct = true;
  std::uint64_t direct_min_bytes = 64u << 20;
};

class DirectStream;

// Streams one safetensors file whose tensors are all known up front: the header is written
// first, then each tensor's bytes in order, into "<path>.tmp.<pid>"; commit() renames it into
// place. Destroying an uncommitted writer removes the temporary file.
class FileWriter {
 public:
  FileWriter(std::string path, std::vector<TensorSpec> specs, Metadata metadata,
             WriteOptions options = {});
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Appends the next tensor (specs[next()]); `nbytes` must equal its nbytes(). `crc` may pass
  // the CRC-32 of the bytes when the caller already computed it (else pass nullptr).
  void write_next(const void* bytes, std::size_t nbytes, const std::uint32_t* crc = nullptr);
  std::size_t next() const { return next_; }
  const std::vector<TensorSpec>& specs() const { return specs_; }
  // Completes the temporary file (checksum, fsync, close) without renaming it.
  void finish();
  // finish() if needed, then renames the temporary file onto the path.
  void commit();
  const std::string& path() const { return path_; }

 private:
  void write_all(const void* bytes, std::size_t nbytes, std::uint64_t offset);
  std::string path_, temporary_;
  std::string header_;                    // direct mode: staged with the first tensor
  bool direct_ = false;                   // fd_ was opened with O_DIRECT
  std::unique_ptr<DirectStream> stream_;  // direct mode, from the first tensor to finish()
  std::vector<TensorSpec> specs_;
  Metadata metadata_;
  WriteOptions options_;
  int fd_ = -1;
  std::size_t next_ = 0;
  std::uint64_t offset_ = 0;
  std::uint32_t crc_ = 0;
  bool finished_ = false, committed_ = false;
};

// Splits `specs` (in order) into shards of at most `max_shard_bytes` data bytes each (a tensor
// larger than that gets a shard of its own); 0 means one file. Returns the first tensor index of
// each shard.
std::vector<std::size_t> plan_shards(const std::vector<TensorSpec>& specs, std::uint64_t max_shard_bytes);
// "model-00002-of-00005.safetensors"
std::string shard_file_name(std::size_t shard, std::size_t count);

// Writes a model into directory `dir`: model.safetensors, or shards plus the index. Shards are
// streamed into temporary files; commit() renames them all and writes the index last, so an
// interrupted write leaves no index that names missing or partial shards.
class ModelWriter {
 public:
  ModelWriter(std::string dir, std::vector<TensorSpec> specs, Metadata metadata,
              std::uint64_t max_shard_bytes = 0, WriteOptions options = {});
  ~ModelWriter();
  void write_next(const void* bytes, std::size_t nbytes, const std::uint32_t* crc = nullptr);
  void commit();
  // The files commit() will produce (shards, then the index if any), relative to dir.
  std::vector<std::string> file_names() const;

 private:
  std::string dir_;
  std::vector<TensorSpec> specs_;
  Metadata metadata_;
  WriteOptions options_;
  std::vector<std::size_t> shard_begin_;
  std::vector<std::unique_ptr<FileWriter>> shards_;
  std::size_t current_ = 0;
};

// Buffered writer for small files (checkpoints): collects tensors, then writes atomically.
class Writer {
 public:
  void add(const std::string& name, Dtype dtype, std::vector<std::int64_t> shape, const void* bytes,
           std::size_t nbytes);
  // Converts `values` (numel of `shape`) from float32 to `dtype` (F32, F16, BF16, F64).
  void add_f32(const std::string& name, std::vector<std::int64_t> shape, const float* values,
               Dtype dtype = Dtype::kF32);
  void set_metadata(const std::string& key, const std::string& value);
  // One file at `path`.
  void write(const std::string& path, WriteOptions options = {}) const;
  // A model directory (see ModelWriter).
  void write_model(const std::string& dir, std::uint64_t max_shard_bytes = 0,
                   WriteOptions options = {}) const;

 private:
  std::vector<TensorSpec> specs_;
  std::vector<std::string> bytes_;
  Metadata metadata_;
};

// A model to read: one .safetensors file, or a directory holding model.safetensors or an index
// with its shards. Tensors are looked up by name across shards.
class Model {
 public:
  static Model open(const std::string& path);

  const std::string& path() const { return path_; }
  // All tensors, in the order of the files and of each file's data.
  const std::vector<const TensorInfo*>& tensors() const { return order_; }
  const TensorInfo* find(std::string_view name) const;
  // The shard file that holds `name` (ModelError naming the model when absent).
  const Reader& reader_of(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;
  const std::vector<Reader>& files() const { return files_; }
  std::uint64_t total_bytes() const;

 private:
  std::string path_;
  std::vector<Reader> files_;
  std::vector<const TensorInfo*> order_;
  std::map<std::string, std::size_t, std::less<>> file_of_;
};

}  // namespace septa::safetensors
