#include "crf/parallel/instance_exchange.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "crf/io/binary_io.h"
#include "crf/parallel/keep_buffers.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

// One instance on the wire, followed by its `fresh` items not sent before in this message
// (each a u32 entry count and its int32 attribute ids) and its `listed` candidate classes
// (int32), then their base offsets (double) when `based`. Its items are the last `span` of
// the message's items once its fresh ones are read (the receiver counts them), so no item
// index travels; the global id fits 32 bits (spread_instances' limit). 24 bytes: the record
// was 40 (a 64-bit id, the item index and 32-bit span, fresh and based), a third of the bytes
// a rank sent for the unary factor on CoNLL-2000 at 2 ranks and a fifth for the pairwise one:
// 6.46 -> 5.60 MB and 9.52 -> 8.67 MB sent by rank 0.
struct Record {
  uint32_t global;
  int32_t gold;
  int32_t context;
  float weight;
  uint32_t listed;  // classes in its candidate list; kNoList: none
  uint8_t span;
  uint8_t fresh;
  uint8_t based;    // 1: the list's base offsets follow its classes
  uint8_t unused;
};
static_assert(sizeof(Record) == 24 && std::is_trivially_copyable_v<Record>,
              "Record goes over the wire as bytes, without padding");
constexpr uint32_t kNoList = 0xffffffffu;

// The exchange runs in this many rounds, each moving the instances of one part of every
// rank's own list: the messages and received bytes held at once are a fraction of the total.
constexpr std::size_t kRounds = 8;

// What one rank sends to one other (counted before the exchange, so that the receiver
// allocates its arrays once).
struct Totals {
  uint64_t instances = 0, items = 0, entries = 0, listed = 0, based = 0;
};

template <typename T>
void append_raw(std::string& out, const T* values, std::size_t n) {
  out.append(reinterpret_cast<const char*>(values), n * sizeof(T));
}

// Reads n values of T at `at` of `bytes` (any alignment) into out [n].
template <typename T>
void read_raw(const std::string& bytes, std::size_t& at, T* out, std::size_t n) {
  SEPTA_CHECK(n <= (bytes.size() - at) / sizeof(T));
  if (n > 0) std::memcpy(out, bytes.data() + at, n * sizeof(T));
  at += n * sizeof(T);
}

}  // namespace

HeldInstances exchange_instances(const Dataset& own_data, const std::vector<LocalInstance>& own,
                                 const CandidateLists* own_lists, uint64_t first,
                                 const std::vector<uint64_t>& dest, Communicator& comm) {
  const std::size_t R = static_cast<std::size_t>(comm.size());
  const std::size_t me = static_cast<std::size_t>(comm.rank());
  SEPTA_CHECK(dest.size() == own.size() && R <= 64);
  if (first + own.size() > UINT32_MAX)
    throw OptionError("SGD over ranks: at most 4,294,967,295 instances per factor (got " +
                      std::to_string(first + own.size()) + " or more)");
  const bool with_base = own_lists && !own_lists->base.empty();
  const std::size_t n_own = own.size();
  const auto list_size = [&](const LocalInstance& instance) -> std::size_t {
    if (!own_lists || instance.candidates < 0) return 0;
    const std::size_t c = static_cast<std::size_t>(instance.candidates);
    return own_lists->offsets[c + 1] - own_lists->offsets[c];
  };

  // What each rank receives in all, to allocate once; the bytes of each round's messages.
  Totals in_total;
  std::vector<std::size_t> round_bytes(kRounds * R, 0);  // [round][destination]
  {
    std::vector<Totals> out(R);
    std::vector<int64_t> last(R, -1);  // last item counted per destination
    for (std::size_t c = 0; c < kRounds; ++c) {
      std::fill(last.begin(), last.end(), -1);  // every round's messages start afresh
      for (std::size_t i = n_own * c / kRounds; i < n_own * (c + 1) / kRounds; ++i) {
        const LocalInstance& instance = own[i];
        const int64_t item = static_cast<int64_t>(instance.item);
        for (uint64_t bits = dest[i]; bits; bits &= bits - 1) {
          const std::size_t q = static_cast<std::size_t>(__builtin_ctzll(bits));
          Totals& t = out[q];
          std::size_t& bytes = round_bytes[c * R + q];
          const std::size_t listed = list_size(instance);
          ++t.instances;
          t.listed += listed;
          if (with_base) t.based += listed;
          bytes += sizeof(Record) + listed * (sizeof(int32_t) + (with_base ? sizeof(double) : 0));
          for (int64_t k = std::max(item, last[q] + 1); k < item + instance.span; ++k) {
            const std::size_t entries = own_data.item_offsets[static_cast<std::size_t>(k) + 1] -
                                        own_data.item_offsets[static_cast<std::size_t>(k)];
            ++t.items;
            t.entries += entries;
            bytes += sizeof(uint32_t) + entries * sizeof(int32_t);
            last[q] = k;
          }
        }
      }
    }
    std::vector<std::string> to(R);
    for (std::size_t q = 0; q < R; ++q) to[q].assign(reinterpret_cast<const char*>(&out[q]), sizeof(Totals));
    const std::vector<std::string> got = comm.alltoall(to);
    for (std::size_t q = 0; q < R; ++q) {
      Totals t;
      SEPTA_CHECK(got[q].size() == sizeof t);
      std::memcpy(&t, got[q].data(), sizeof t);
      in_total.instances += t.instances;
      in_total.items += t.items;
      in_total.entries += t.entries;
      in_total.listed += t.listed;
      in_total.based += t.based;
    }
  }
  HeldInstances held;
  held.data.unit_values = true;
  held.data.edge_offsets.clear();
  held.data.item_offsets.reserve(in_total.items + 1);
  held.data.attribute_ids.reserve(in_total.entries);
  held.instances.reserve(in_total.instances);
  held.global.reserve(in_total.instances);
  held.candidates.offsets.reserve(in_total.instances + 1);
  held.candidates.classes.reserve(in_total.listed);
  held.candidates.base.reserve(in_total.based);

  // The instances a rank keeps of its own are appended to `held` straight from its arrays, at
  // the place where its own message would have been read (rank order within each round): the
  // same arrays as through a message, without writing and parsing one (on CoNLL-2000 x16 at 2
  // ranks each rank keeps about half of its own instances).
  const auto keep_own = [&](const std::vector<std::size_t>& kept) {
    int64_t last_item = -1;  // own index of the last item appended in this round
    for (std::size_t i : kept) {
      const LocalInstance& instance = own[i];
      const int64_t item = static_cast<int64_t>(instance.item);
      SEPTA_CHECK(item + instance.span - 1 >= last_item);
      for (int64_t k = std::max(item, last_item + 1); k < item + instance.span; ++k) {
        const std::size_t at = own_data.item_offsets[static_cast<std::size_t>(k)];
        const std::size_t end = own_data.item_offsets[static_cast<std::size_t>(k) + 1];
        held.data.attribute_ids.insert(held.data.attribute_ids.end(),
                                       own_data.attribute_ids.begin() + static_cast<std::ptrdiff_t>(at),
                                       own_data.attribute_ids.begin() + static_cast<std::ptrdiff_t>(end));
        held.data.item_offsets.push_back(held.data.attribute_ids.size());
      }
      last_item = std::max(last_item, item + instance.span - 1);
      LocalInstance copy = instance;
      copy.item = held.data.item_offsets.size() - 1 - static_cast<std::size_t>(instance.span);
      if (own_lists && instance.candidates >= 0) {
        CandidateLists& lists = held.candidates;
        const std::size_t at = own_lists->offsets[static_cast<std::size_t>(instance.candidates)];
        const std::size_t n = list_size(instance);
        copy.candidates = static_cast<int64_t>(lists.size());
        lists.classes.insert(lists.classes.end(), own_lists->classes.begin() + static_cast<std::ptrdiff_t>(at),
                             own_lists->classes.begin() + static_cast<std::ptrdiff_t>(at + n));
        if (with_base)
          lists.base.insert(lists.base.end(), own_lists->base.begin() + static_cast<std::ptrdiff_t>(at),
                            own_lists->base.begin() + static_cast<std::ptrdiff_t>(at + n));
        lists.offsets.push_back(lists.classes.size());
      } else {
        copy.candidates = -1;
      }
      held.instances.push_back(copy);
      held.global.push_back(first + i);
    }
  };
  // The rounds' messages and received parts (megabytes each on large data) come from the heap
  // and go back to it, so that each round reuses the pages of the one before instead of
  // faulting in fresh mappings (the held arrays above are allocated before, as usual).
  const KeepRoundBuffers keep_buffers(R > 1);
  std::vector<std::string> to(R);
  std::vector<std::size_t> kept;        // [kept this round] own instances this rank keeps
  uint64_t sent_bytes = 0;              // to the other ranks (SEPTA_SGD_PROFILE)
  std::vector<int64_t> last(R);         // own index of the last item put in each message
  for (std::size_t c = 0; c < kRounds; ++c) {
    for (std::size_t q = 0; q < R; ++q) {
      to[q].clear();
      if (q != me) to[q].reserve(round_bytes[c * R + q]);
    }
    kept.clear();
    std::fill(last.begin(), last.end(), -1);
    for (std::size_t i = n_own * c / kRounds; i < n_own * (c + 1) / kRounds; ++i) {
      const LocalInstance& instance = own[i];
      const int64_t item = static_cast<int64_t>(instance.item);
      const std::size_t listed = list_size(instance);
      for (uint64_t bits = dest[i]; bits; bits &= bits - 1) {
        const std::size_t q = static_cast<std::size_t>(__builtin_ctzll(bits));
        if (q == me) {
          kept.push_back(i);
          continue;
        }
        std::string& m = to[q];
        // Instances come in item order, so the items of this one already in the message are
        // the last ones put there, consecutively.
        SEPTA_CHECK(item + instance.span - 1 >= last[q]);
        const int64_t from = std::max(item, last[q] + 1);
        SEPTA_CHECK(instance.span >= 1 && instance.span <= 255);
        Record r{};
        r.global = static_cast<uint32_t>(first + i);
        r.fresh = static_cast<uint8_t>(item + instance.span - from);
        r.span = static_cast<uint8_t>(instance.span);
        r.gold = instance.gold;
        r.context = instance.context;
        r.weight = instance.weight;
        SEPTA_CHECK(listed < kNoList);
        r.listed = own_lists && instance.candidates >= 0 ? static_cast<uint32_t>(listed) : kNoList;
        r.based = r.listed != kNoList && with_base ? 1 : 0;
        append_raw(m, &r, 1);
        for (int64_t k = from; k < item + instance.span; ++k) {
          const std::size_t at = own_data.item_offsets[static_cast<std::size_t>(k)];
          const uint32_t n = static_cast<uint32_t>(own_data.item_offsets[static_cast<std::size_t>(k) + 1] - at);
          append_raw(m, &n, 1);
          append_raw(m, own_data.attribute_ids.data() + at, n);
        }
        last[q] = item + instance.span - 1;
        if (r.listed != kNoList) {
          const std::size_t at = own_lists->offsets[static_cast<std::size_t>(instance.candidates)];
          append_raw(m, own_lists->classes.data() + at, listed);
          if (r.based) append_raw(m, own_lists->base.data() + at, listed);
        }
      }
    }
    for (std::size_t q = 0; q < R; ++q) {
      if (q == me) continue;
      SEPTA_CHECK(to[q].size() == round_bytes[c * R + q]);
      sent_bytes += to[q].size();
    }
    std::vector<std::string> parts = comm.alltoall(to);
    for (std::size_t q = 0; q < R; ++q) {
      if (q == me) {
        keep_own(kept);
        continue;
      }
      const std::string& bytes = parts[q];
      const std::size_t item_base = held.data.item_offsets.size() - 1;
      std::size_t at = 0;
      while (at < bytes.size()) {
        Record r;
        read_raw(bytes, at, &r, 1);
        SEPTA_CHECK(r.span >= 1 && r.fresh <= r.span && r.based <= 1);
        for (uint32_t k = 0; k < r.fresh; ++k) {
          uint32_t n;
          read_raw(bytes, at, &n, 1);
          auto& ids = held.data.attribute_ids;
          const std::size_t old = ids.size();
          SEPTA_CHECK(n <= (bytes.size() - at) / sizeof(int32_t));
          ids.resize(old + n);
          read_raw(bytes, at, ids.data() + old, n);
          held.data.item_offsets.push_back(ids.size());
        }
        const std::size_t items = held.data.item_offsets.size() - 1;  // held so far
        SEPTA_CHECK(items >= item_base + r.span);
        LocalInstance instance;
        instance.item = items - r.span;
        instance.span = r.span;
        instance.gold = r.gold;
        instance.context = r.context;
        instance.weight = r.weight;
        if (r.listed != kNoList) {
          CandidateLists& lists = held.candidates;
          instance.candidates = static_cast<int64_t>(lists.size());
          const std::size_t old = lists.classes.size();
          SEPTA_CHECK(r.listed <= (bytes.size() - at) / sizeof(int32_t));
          lists.classes.resize(old + r.listed);
          read_raw(bytes, at, lists.classes.data() + old, r.listed);
          // every list of a factor has base offsets, or none has
          SEPTA_CHECK(old == 0 || (lists.base.size() == old) == (r.based == 1));
          if (r.based) {
            lists.base.resize(old + r.listed);
            read_raw(bytes, at, lists.base.data() + old, r.listed);
          }
          lists.offsets.push_back(lists.classes.size());
        }
        held.instances.push_back(instance);
        held.global.push_back(r.global);
      }
      std::string().swap(parts[q]);
    }
  }
  SEPTA_CHECK(held.instances.size() == in_total.instances &&
              held.data.attribute_ids.size() == in_total.entries);
  if (std::getenv("SEPTA_SGD_PROFILE"))
    std::fprintf(stderr,
                 "instance exchange: rank %zu: %zu own instances, %.2f MB sent to the other ranks; "
                 "holds %zu instances, %zu items\n",
                 me, n_own, static_cast<double>(sent_bytes) / 1e6,
                 held.instances.size(), held.data.item_offsets.size() - 1);
  return held;
}

}  // namespace septa::crf
