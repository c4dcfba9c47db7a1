// GNU gettext message catalogs (.mo files): the binary format Debian's translation catalogs ship
// in /usr/share/locale/<lang>/LC_MESSAGES/. Torch-free: the fuzz target links it alone.
//
// Layout (gettext manual, "The Format of GNU MO Files"), all integers 32-bit in the file's byte
// order, which the magic number tells (0x950412de read in the right order):
//   0  magic            8  N strings         12 O offset of the original-string table
//   4  revision         16 T offset of the translation table   20 S hash size  24 H hash offset
//   table entry i (8 bytes): length (without the trailing NUL), offset of the string
// An original string is "msgctxt\x04msgid" or "msgid", followed for plural entries by
// "\0msgid_plural"; a translation holds the plural forms separated by NULs. The entry with an
// empty msgid is the catalog's header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace septa::nn {

struct MoEntry {
  std::string context;              // msgctxt ("" when none)
  std::string msgid;                // the English message
  std::string msgid_plural;         // "" unless a plural entry
  std::vector<std::string> msgstr;  // the translation; one string per plural form
  bool has_context = false;         // msgctxt given, possibly empty: `msgctxt ""` is a context
};

struct MoCatalog {
  bool big_endian = false;
  uint32_t revision = 0;
  std::string header;            // the translation of the empty msgid ("Content-Type: ...")
  std::vector<MoEntry> entries;  // file order, header excluded
};

// Parses a whole .mo file held in `bytes`; `name` labels errors. septa::FormatError
// "<name>: offset <k>: <what>" for a wrong magic, an unknown major revision, tables or strings
// outside the file, or strings missing their terminating NUL.
MoCatalog parse_mo(std::string_view bytes, const std::string& name);

// Reads and parses a file; septa::IoError when it cannot be read.
MoCatalog read_mo(const std::string& path);

// Builds a .mo file (both byte orders) from entries: for tests, fuzz seeds and fixtures.
std::string write_mo(const std::vector<MoEntry>& entries, bool big_endian,
                     const std::string& header = "Content-Type: text/plain; charset=UTF-8\n");

}  // namespace septa::nn
