// safetensors reading: mapping, strict header validation, conversion, checksum.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "safetensors/crc32.h"
#include "safetensors/json.h"
#include "safetensors/safetensors.h"
#include "septa/error.h"

namespace septa::safetensors {

std::uint64_t TensorSpec::numel() const {
  std::uint64_t n = 1;
  for (const std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

// The bytes of the file: a read-only private mapping, or an owned copy.
struct Reader::Storage {
  const unsigned char* base = nullptr;
  std::size_t size = 0;
  void* mapping = nullptr;  // when mapped
  std::string copy;         // when from_bytes

  ~Storage() {
    if (mapping) ::munmap(mapping, size);
  }
};

Reader Reader::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    throw IoError(path + ": cannot stat: " + reason);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(path + ": not a regular file");
  }
  auto storage = std::make_shared<Storage>();
  storage->size = static_cast<std::size_t>(st.st_size);
  if (storage->size > 0) {
    void* p = ::mmap(nullptr, storage->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      throw IoError(path + ": cannot map: " + reason);
    }
    storage->mapping = p;
    storage->base = static_cast<const unsigned char*>(p);
  }
  ::close(fd);
  Reader reader;
  reader.storage_ = std::move(storage);
  reader.label_ = path;
  reader.parse();
  return reader;
}

Reader Reader::from_bytes(std::string_view bytes, const std::string& label) {
  auto storage = std::make_shared<Storage>();
  storage->copy.assign(bytes.data(), bytes.size());
  storage->base = reinterpret_cast<const unsigned char*>(storage->copy.data());
  storage->size = storage->copy.size();
  Reader reader;
  reader.storage_ = std::move(storage);
  reader.label_ = label;
  reader.parse();
  return reader;
}

namespace {

std::uint64_t read_le64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

void Reader::parse() {
  const std::string& file = label_;
  const std::size_t size = storage_->size;
  if (size < 8)
    throw ModelError(file + ": not a safetensors file: " + std::to_string(size) +
                     " bytes, shorter than the 8-byte header length");
  const std::uint64_t n = read_le64(storage_->base);
  if (n > kMaxHeaderBytes)
    throw ModelError(file + ": not a safetensors file: header length " + std::to_string(n) +
                     " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > size - 8)
    throw ModelError(file + ": truncated: header length " + std::to_string(n) + " but only " +
                     std::to_string(size - 8) + " bytes follow the length field");
  if (n < 2 || storage_->base[8] != '{')
    throw ModelError(file + ": not a safetensors file: the header is not a JSON object");
  header_bytes_ = 8 + n;
  data_bytes_ = size - header_bytes_;
  const std::string_view text(reinterpret_cast<const char*>(storage_->base + 8), n);
  const json::Value root = json::parse(text, file);
  if (root.kind != json::Value::Kind::kObject)
    throw ModelError(file + ": not a safetensors file: the header is not a JSON object");

  for (const auto& [name, entry] : root.members) {
    if (name == "__metadata__") {
      if (entry.kind != json::Value::Kind::kObject)
        throw ModelError(file + ": __metadata__ must be an object of strings, found " +
                         json::kind_name(entry.kind));
      for (const auto& [key, value] : entry.members) {
        if (value.kind != json::Value::Kind::kString)
          throw ModelError(file + ": __metadata__ '" + key + "': expected a string, found " +
                           json::kind_name(value.kind));
        metadata_[key] = value.text;
      }
      continue;
    }
    const std::string where = file + ": tensor '" + name + "': ";
    if (entry.kind != json::Value::Kind::kObject)
      throw ModelError(where + "expected an object, found " + json::kind_name(entry.kind));
    TensorInfo info;
    info.name = name;
    const json::Value* dtype = entry.find("dtype");
    const json::Value* shape = entry.find("shape");
    const json::Value* offsets = entry.find("data_offsets");
    if (!dtype || !shape || !offsets)
      throw ModelError(where + "missing " +
                       std::string(!dtype ? "dtype" : !shape ? "shape" : "data_offsets"));
    for (const auto& member : entry.members)
      if (member.first != "dtype" && member.first != "shape" && member.first != "data_offsets")
        throw ModelError(where + "unknown field '" + member.first + "'");
    if (dtype->kind != json::Value::Kind::kString)
      throw ModelError(where + "dtype must be a string, found " + json::kind_name(dtype->kind));
    const auto parsed = parse_dtype(dtype->text);
    if (!parsed) throw ModelError(where + "unknown dtype '" + dtype->text + "'");
    info.dtype = *parsed;
    if (shape->kind != json::Value::Kind::kArray)
      throw ModelError(where + "shape must be an array, found " + json::kind_name(shape->kind));
    // numel * element size, with overflow detection (a hostile shape must not wrap around).
    unsigned __int128 bytes = dtype_size(info.dtype);
    for (const auto& d : shape->items) {
      if (d.kind != json::Value::Kind::kNumber || !d.is_uint || d.uint > (1ull << 62))
        throw ModelError(where + "shape entries must be non-negative integers, found " +
                         (d.kind == json::Value::Kind::kNumber ? d.text : json::kind_name(d.kind)));
      info.shape.push_back(static_cast<std::int64_t>(d.uint));
      bytes *= d.uint;
      if (bytes > (static_cast<unsigned __int128>(1) << 64)) bytes = static_cast<unsigned __int128>(1) << 64;
    }
    if (offsets->kind != json::Value::Kind::kArray || offsets->items.size() != 2 ||
        !offsets->items[0].is_uint || !offsets->items[1].is_uint)
      throw ModelError(where + "data_offsets must be [begin, end], two non-negative integers");
    info.begin = offsets->items[0].uint;
    info.end = offsets->items[1].uint;
    if (info.end < info.begin)
      throw ModelError(where + "data_offsets [" + std::to_string(info.begin) + ", " +
                       std::to_string(info.end) + "] end before they begin");
    if (bytes != info.end - info.begin)
      throw ModelError(where + dtype_name(info.dtype) + " shape " + shape_string(info.shape) +
                       " needs " + (bytes >> 64 ? std::string("more than 2^64") : std::to_string(static_cast<std::uint64_t>(bytes))) +
                       " bytes, data_offsets [" + std::to_string(info.begin) + ", " +
                       std::to_string(info.end) + "] hold " + std::to_string(info.end - info.begin));
    tensors_.push_back(std::move(info));
  }

  // The tensors must tile the data section: sorted by begin, each starts where the previous
  // one ended, the last ends at the end of the file.
  std::stable_sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  for (const auto& info : tensors_) {
    if (info.begin != expected) {
      const std::string where = file + ": tensor '" + info.name + "': ";
      if (info.begin < expected)
        throw ModelError(where + "data_offsets [" + std::to_string(info.begin) + ", " +
                         std::to_string(info.end) + "] overlap the previous tensor, which ends at " +
                         std::to_string(expected));
      throw ModelError(where + "data_offsets begin at " + std::to_string(info.begin) +
                       ", leaving a hole after byte " + std::to_string(expected));
    }
    expected = info.end;
  }
  if (expected > data_bytes_) {
    const TensorInfo* first = nullptr;  // the first tensor that does not fit
    for (auto it = tensors_.rbegin(); it != tensors_.rend(); ++it)
      if (it->end > data_bytes_) first = &*it;
    throw ModelError(file + ": truncated: tensor '" + first->name + "' ends at data byte " +
                     std::to_string(first->end) + " but the data section holds " +
                     std::to_string(data_bytes_) + " bytes");
  }
  if (expected < data_bytes_)
    throw ModelError(file + ": " + std::to_string(data_bytes_ - expected) +
                     " bytes after the last tensor's data (the tensors must cover the data section)");
  for (std::size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
}

const TensorInfo* Reader::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& Reader::tensor(std::string_view name) const {
  const TensorInfo* info = find(name);
  if (!info) throw ModelError(label_ + ": no tensor '" + std::string(name) + "'");
  return *info;
}

const unsigned char* Reader::data(const TensorInfo& info) const {
  return storage_->base + header_bytes_ + info.begin;
}

void Reader::read_f32(const TensorInfo& info, float* out) const {
  if (!is_float(info.dtype))
    throw ModelError(label_ + ": tensor '" + info.name + "': dtype " + dtype_name(info.dtype) +
                     " is not a floating type (F64, F32, F16, BF16)");
  to_f32(info.dtype, data(info), info.numel(), out);
}

std::vector<float> Reader::read_f32(std::string_view name) const {
  const TensorInfo& info = tensor(name);
  std::vector<float> out(info.numel());
  read_f32(info, out.data());
  return out;
}

void Reader::release(const TensorInfo& info) const {
  if (!storage_->mapping) return;
  static const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  // Only whole pages inside this tensor: a neighbour sharing a page may still be in use.
  const auto begin = reinterpret_cast<std::uintptr_t>(data(info));
  const std::uintptr_t first = (begin + page - 1) / page * page;
  const std::uintptr_t last = (begin + info.nbytes()) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

bool Reader::verify_checksum() const {
  const auto it = metadata_.find(kChecksumKey);
  if (it == metadata_.end()) return false;
  const std::string& value = it->second;
  unsigned long expected = 0;
  if (value.size() != 14 || value.compare(0, 6, "crc32:") != 0 ||
      value.find_first_not_of("0123456789abcdef", 6) != std::string::npos)
    throw ModelError(label_ + ": malformed " + kChecksumKey + " '" + value +
                     "' (expected crc32: and 8 lower-case hex digits)");
  expected = std::stoul(value.substr(6), nullptr, 16);
  const std::uint32_t crc = safetensors::crc32(0, storage_->base + header_bytes_, data_bytes_);
  if (crc != expected) {
    char found[16];
    std::snprintf(found, sizeof found, "%08lx", static_cast<unsigned long>(crc));
    throw ModelError(label_ + ": checksum mismatch: " + kChecksumKey + " says " + value +
                     ", the data section has crc32:" + found + " (the file is corrupted)");
  }
  return true;
}

}  // namespace septa::safetensors
