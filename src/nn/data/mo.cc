#include "nn/data/mo.h"

#include <fstream>
#include <iterator>
#include <sstream>

#include "septa/error.h"

namespace septa::nn {
namespace {

constexpr uint32_t kMagic = 0x950412de;
constexpr char kContextSeparator = '\x04';

class Cursor {
 public:
  Cursor(std::string_view bytes, const std::string& name, bool big_endian)
      : bytes_(bytes), name_(name), big_endian_(big_endian) {}

  [[noreturn]] void fail(uint64_t offset, const std::string& what) const {
    throw FormatError(name_ + ": offset " + std::to_string(offset) + ": " + what);
  }

  uint32_t u32(uint64_t offset) const {
    if (offset + 4 > bytes_.size()) fail(offset, "truncated (file has " + std::to_string(bytes_.size()) + " bytes)");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const auto byte = static_cast<unsigned char>(bytes_[offset + (big_endian_ ? i : 3 - i)]);
      value = (value << 8) | byte;
    }
    return value;
  }

  // String i of the table at `table`: its [length, offset] entry, then the bytes and their NUL.
  std::string_view string(uint64_t table, uint32_t i) const {
    const uint64_t entry = table + 8ull * i;
    const uint64_t length = u32(entry), offset = u32(entry + 4);
    if (offset + length + 1 > bytes_.size())
      fail(entry, "string " + std::to_string(i) + " [" + std::to_string(offset) + ", " +
                      std::to_string(offset + length) + "] lies outside the file");
    if (bytes_[offset + length] != '\0')
      fail(offset + length, "string " + std::to_string(i) + " lacks its terminating NUL");
    return bytes_.substr(offset, length);
  }

 private:
  std::string_view bytes_;
  const std::string& name_;
  bool big_endian_;
};

std::vector<std::string> split_nul(std::string_view text) {
  std::vector<std::string> parts;
  size_t begin = 0;
  for (;;) {
    const size_t end = text.find('\0', begin);
    parts.emplace_back(text.substr(begin, end == std::string_view::npos ? end : end - begin));
    if (end == std::string_view::npos) return parts;
    begin = end + 1;
  }
}

void put_u32(std::string& out, uint32_t value, bool big_endian) {
  for (int i = 0; i < 4; ++i) {
    const int shift = big_endian ? 24 - 8 * i : 8 * i;
    out += static_cast<char>((value >> shift) & 0xff);
  }
}

}  // namespace

MoCatalog parse_mo(std::string_view bytes, const std::string& name) {
  MoCatalog catalog;
  const Cursor little(bytes, name, false);
  const uint32_t magic = little.u32(0);
  if (magic == kMagic) catalog.big_endian = false;
  else if (magic == 0xde120495) catalog.big_endian = true;
  else little.fail(0, "not a .mo file (bad magic number)");
  const Cursor in(bytes, name, catalog.big_endian);
  catalog.revision = in.u32(4);
  if ((catalog.revision >> 16) > 1)
    in.fail(4, "unknown major revision " + std::to_string(catalog.revision >> 16));
  const uint32_t count = in.u32(8);
  const uint64_t originals = in.u32(12), translations = in.u32(16);
  in.u32(20);  // the hash table is not needed to read every entry, but its fields must exist
  if (originals + 8ull * count > bytes.size())
    in.fail(12, "original-string table of " + std::to_string(count) + " entries lies outside the file");
  if (translations + 8ull * count > bytes.size())
    in.fail(16, "translation table of " + std::to_string(count) + " entries lies outside the file");
  catalog.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const std::string_view original = in.string(originals, i);
    const std::string_view translation = in.string(translations, i);
    MoEntry entry;
    std::string_view key = original;
    const size_t separator = key.find(kContextSeparator);
    if (separator != std::string_view::npos && key.find('\0') > separator) {
      entry.context = std::string(key.substr(0, separator));
      entry.has_context = true;
      key.remove_prefix(separator + 1);
    }
    const size_t plural = key.find('\0');
    entry.msgid = std::string(key.substr(0, plural));
    if (plural != std::string_view::npos) entry.msgid_plural = std::string(key.substr(plural + 1));
    entry.msgstr = split_nul(translation);
    if (entry.msgid.empty() && !entry.has_context) {
      catalog.header = entry.msgstr.front();
      continue;
    }
    catalog.entries.push_back(std::move(entry));
  }
  return catalog;
}

MoCatalog read_mo(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read error");
  return parse_mo(bytes.str(), path);
}

std::string write_mo(const std::vector<MoEntry>& entries, bool big_endian, const std::string& header) {
  std::vector<std::pair<std::string, std::string>> strings;  // original, translation
  strings.emplace_back("", header);
  for (const auto& e : entries) {
    std::string original =
        e.has_context || !e.context.empty() ? e.context + kContextSeparator + e.msgid : e.msgid;
    if (!e.msgid_plural.empty()) original += '\0' + e.msgid_plural;
    std::string translation;
    for (size_t i = 0; i < e.msgstr.size(); ++i) {
      if (i > 0) translation += '\0';
      translation += e.msgstr[i];
    }
    strings.emplace_back(std::move(original), std::move(translation));
  }
  const auto n = static_cast<uint32_t>(strings.size());
  const uint32_t originals = 28, translations = originals + 8 * n;
  uint32_t offset = translations + 8 * n;
  std::string out;
  for (uint32_t v : {kMagic, 0u, n, originals, translations, 0u, offset}) put_u32(out, v, big_endian);
  std::string data;
  std::vector<uint32_t> table(4 * n);
  for (uint32_t i = 0; i < n; ++i) {
    for (int side = 0; side < 2; ++side) {
      const std::string& s = side == 0 ? strings[i].first : strings[i].second;
      table[(side * n + i) * 2] = static_cast<uint32_t>(s.size());
      table[(side * n + i) * 2 + 1] = offset + static_cast<uint32_t>(data.size());
      data += s;
      data += '\0';
    }
  }
  for (uint32_t v : table) put_u32(out, v, big_endian);
  return out + data;
}

}  // namespace septa::nn
