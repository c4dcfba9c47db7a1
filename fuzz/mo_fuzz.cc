// libFuzzer target: the gettext .mo reader (src/nn/data/mo.cc), both byte orders.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "nn/data/mo.h"
#include "septa/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  try {
    const auto catalog = septa::nn::parse_mo(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.mo");
    // Whatever was read must survive writing and reading again unchanged.
    const auto again = septa::nn::parse_mo(
        septa::nn::write_mo(catalog.entries, catalog.big_endian, catalog.header), "again.mo");
    if (again.entries.size() != catalog.entries.size()) __builtin_trap();
    for (std::size_t i = 0; i < again.entries.size(); ++i) {
      const auto& a = catalog.entries[i];
      const auto& b = again.entries[i];
      if (a.msgstr.empty() || a.has_context != b.has_context || a.context != b.context || a.msgid != b.msgid ||
          a.msgid_plural != b.msgid_plural || a.msgstr != b.msgstr)
        __builtin_trap();
    }
  } catch (const septa::Error&) {
  }
  return 0;
}
