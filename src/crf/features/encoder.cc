#include "crf/features/encoder.h"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <utility>

#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace septa::crf {

namespace {

// Sentences of an owned corpus freed between trims of the heaps (trim_heaps), one chunk. (Every
// 512 before: 17 walks of the heap on CoNLL-2000, 5% of one thread's encoding, for the same
// peak resident memory of -a separate and lbfgs on CoNLL-2000 and NER within 0.2 MB.)
constexpr std::size_t kTrimEvery = 2048;

// Returns the free pages of every heap (glibc's arenas) to the system.
void trim_heaps() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

/*
 * The expanded attribute strings of one sentence, item by item (item t's state strings, then
 * the strings of its edge from t-1), concatenated in one reused buffer, with the scratch that
 * a batch of dictionary lookups needs: after the first sentences it allocates nothing. Training
 * (Dictionary::add_all) and tagging (Dictionary::find_all) expand through it alike.
 */
struct SentenceStrings {
  std::string text;                // expanded strings, concatenated
  std::vector<std::size_t> ends;   // [strings] end of each in text
  std::vector<std::size_t> split;  // [2T] strings ending each item's state part, edge part
  std::vector<uint64_t> hashes;    // [strings] scratch of the batch lookups
  std::vector<int32_t> ids;        // [strings] ids the batch lookup writes

  void expand(const FeatureTemplate& feature_template, const ColumnSentence& sentence) {
    text.clear();
    ends.clear();
    split.clear();
    for (std::size_t t = 0; t < sentence.columns.size(); ++t) {
      feature_template.expand(sentence, t, text, ends);
      split.push_back(ends.size());
      feature_template.expand_edge(sentence, t, text, ends);
      split.push_back(ends.size());
    }
    if (hashes.size() < ends.size()) hashes.resize(ends.size());
    if (ids.size() < ends.size()) ids.resize(ends.size());
  }
  std::size_t size() const { return ends.size(); }
  // String i as a view into text (the NameAt of Dictionary's batch lookups).
  auto at() const {
    return [this](std::size_t i) {
      const std::size_t begin = i ? ends[i - 1] : 0;
      return std::string_view(text).substr(begin, ends[i] - begin);
    };
  }
};

/*
 * The chunk dictionaries [C] merged in chunk order, in parallel: every string gets the id that
 * adding the chunks' strings one after the other to an empty dictionary gives it (first seen,
 * first numbered). The strings are split by hash into P parts; each part, on its own, walks the
 * chunks in order and finds each string's first occurrence (chunk, local id); the first
 * occurrences are numbered chunk by chunk (each chunk's new strings in its local order, after
 * the earlier chunks' ones), every other string takes its first occurrence's id, and the new
 * strings move into `into` in id order. `into` must be empty; global [C][local id] -> id.
 * The serial merge costs a lookup per string of every chunk on one thread: at 16 threads it
 * was most of the encoding's wall time.
 */
void merge_in_order(std::vector<Dictionary*>& chunks, Dictionary& into,
                    std::vector<std::vector<int32_t>>& global, int threads) {
  const std::size_t C = chunks.size();
  constexpr std::size_t P = 64;
  constexpr int kPartShift = 58;  // part of a string: the top 6 bits of its hash
  // The chunks' hashes, by local id (their indexes are not needed: freed first).
  std::vector<const std::vector<uint64_t>*> hashes(C);          // [C] -> [local id]
  std::vector<std::vector<std::vector<uint32_t>>> by_part(C);    // [C][P] local ids, in order
  parallel_for(C, threads, [&](std::size_t c) {
    chunks[c]->drop_index();
    const std::vector<uint64_t>& h = chunks[c]->hashes();
    hashes[c] = &h;
    by_part[c].assign(P, {});
    for (std::size_t i = 0; i < h.size(); ++i)
      by_part[c][h[i] >> kPartShift].push_back(static_cast<uint32_t>(i));
  });
  const auto ref = [](std::size_t c, std::size_t i) { return (uint64_t{c} << 32) | i; };
  std::vector<std::vector<uint64_t>> first(C);  // [C][local id] ref of the first occurrence
  for (std::size_t c = 0; c < C; ++c) first[c].resize(hashes[c]->size());
  parallel_for(P, threads, [&](std::size_t p) {
    std::size_t n = 0;
    for (std::size_t c = 0; c < C; ++c) n += by_part[c][p].size();
    std::size_t size = 16;
    while (size < 2 * n) size *= 2;
    std::vector<uint64_t> table(size, 0);  // [size] ref + 1 of a first occurrence, 0 empty
    const std::size_t mask = size - 1;
    for (std::size_t c = 0; c < C; ++c) {
      const std::vector<std::string>& names = chunks[c]->names();
      for (uint32_t i : by_part[c][p]) {
        const uint64_t h = (*hashes[c])[i];
        std::size_t slot = h & mask;
        for (;; slot = (slot + 1) & mask) {
          const uint64_t entry = table[slot];
          if (entry == 0) {
            table[slot] = ref(c, i) + 1;
            first[c][i] = ref(c, i);
            break;
          }
          const std::size_t c2 = (entry - 1) >> 32, i2 = (entry - 1) & 0xffffffffu;
          if ((*hashes[c2])[i2] == h && chunks[c2]->names()[i2] == names[i]) {
            first[c][i] = entry - 1;
            break;
          }
        }
      }
    }
  });
  std::vector<std::size_t> base(C + 1, 0);  // [C+1] first id of each chunk's new strings
  parallel_for(C, threads, [&](std::size_t c) {
    std::size_t fresh = 0;
    for (std::size_t i = 0; i < first[c].size(); ++i) fresh += first[c][i] == ref(c, i);
    base[c + 1] = fresh;
  });
  for (std::size_t c = 0; c < C; ++c) base[c + 1] += base[c];
  parallel_for(C, threads, [&](std::size_t c) {
    global[c].resize(first[c].size());
    int32_t id = static_cast<int32_t>(base[c]);
    for (std::size_t i = 0; i < first[c].size(); ++i)
      if (first[c][i] == ref(c, i)) global[c][i] = id++;
  });
  std::vector<std::string> names(base[C]);
  std::vector<uint64_t> name_hashes(base[C]);
  parallel_for(C, threads, [&](std::size_t c) {
    for (std::size_t i = 0; i < first[c].size(); ++i) {
      const uint64_t f = first[c][i];
      if (f != ref(c, i)) global[c][i] = global[f >> 32][f & 0xffffffffu];  // an earlier chunk
    }
    for (std::size_t i = 0; i < first[c].size(); ++i)
      if (first[c][i] == ref(c, i))
        name_hashes[static_cast<std::size_t>(global[c][i])] = (*hashes[c])[i];
    std::vector<std::string> taken = chunks[c]->take_names();
    for (std::size_t i = 0; i < taken.size(); ++i)
      if (first[c][i] == ref(c, i))
        names[static_cast<std::size_t>(global[c][i])] = std::move(taken[i]);
  });
  into.assign_distinct(std::move(names), std::move(name_hashes));
}

}  // namespace

Encoder::Encoder(FeatureTemplate feature_template)
    : format_(InputFormat::kColumns), template_(std::move(feature_template)) {}

Encoder Encoder::restore(InputFormat format, const std::string& template_text,
                         std::size_t columns) {
  Encoder encoder;
  encoder.format_ = format;
  if (format == InputFormat::kColumns)
    encoder.template_ = FeatureTemplate::parse(template_text, "model template");
  encoder.columns_ = columns;
  return encoder;
}

/*
 * Template expansion and string interning dominate reading. Each of `threads` workers expands a
 * contiguous chunk of sentences into a chunk-local dictionary (ids in first-seen order); the
 * chunks are then merged in order, so every string gets the id a sequential pass would give it,
 * whatever the thread count.
 */
void Encoder::encode_training(const std::vector<ColumnSentence>& corpus, Dataset& out,
                              int threads) {
  encode_columns(corpus, nullptr, out, threads);
}

void Encoder::encode_training(std::vector<ColumnSentence>&& corpus, Dataset& out, int threads) {
  encode_training(std::move(corpus), out, threads, true);
}

void Encoder::encode_training(std::vector<ColumnSentence>&& corpus, Dataset& out, int threads,
                              bool values) {
  encode_columns(corpus, &corpus, out, threads, values);
  std::vector<ColumnSentence>().swap(corpus);
}

void Encoder::encode_columns(const std::vector<ColumnSentence>& corpus,
                             std::vector<ColumnSentence>* owned, Dataset& out, int threads,
                             bool values) {
  SEPTA_CHECK(format_ == InputFormat::kColumns);
  for (const ColumnSentence& sentence : corpus) {
    const std::size_t C = sentence.columns.front().size();
    if (columns_ == 0) {
      columns_ = C;
      if (static_cast<int>(C) <= template_.max_column() + 1)
        throw FormatError(item_place(sentence, 0) + ": the template reads column " + std::to_string(template_.max_column()) +
                          " but the data has " + std::to_string(C) +
                          " columns, the last of which is the label");
    } else if (C != columns_) {
      throw FormatError(item_place(sentence, 0) + ": expected " +
                        std::to_string(columns_) + " columns, found " + std::to_string(C));
    }
  }
  struct Chunk {
    Dictionary attributes;             // chunk-local, first-seen order
    std::vector<uint32_t> per_item;    // [items] entries of each item
    std::vector<int32_t> edge_ids;     // [edge entries] chunk-local ids of edge attributes
    std::vector<uint32_t> edges_per_item;  // [items] edge entries of each item
    Dictionary labels;                 // chunk-local, first-seen order
    std::vector<int32_t> label_ids;    // [items] chunk-local label ids
    std::vector<uint32_t> lengths;     // [sentences] items of each sentence
  };
  const std::size_t N = corpus.size();
  const std::size_t chunks = std::max<std::size_t>(1, std::min<std::size_t>(threads, N / 64 + 1));
  std::vector<Chunk> parts(chunks);
  // Every template line gives one string per item (edge lines: per item after the first), so
  // each chunk's entries are known before it runs: the chunks write their chunk-local ids
  // straight into the dataset's entries, renumbered there once the dictionaries are merged
  // (an array of the chunk's own, copied over and freed, had faulted in and written every
  // entry twice: 16 MB on CoNLL-2000).
  const std::size_t items0 = out.labels.size(), entries0 = out.attribute_ids.size(),
                    edges0 = out.edge_ids.size(), sequences0 = out.weights.size();
  std::vector<std::size_t> first_entry(chunks + 1, entries0), first_edge(chunks + 1, edges0),
      first_item(chunks + 1, items0);  // [chunks+1] where each chunk's slices start
  for (std::size_t c = 0; c < chunks; ++c) {
    std::size_t items = 0;
    for (std::size_t n = N * c / chunks; n < N * (c + 1) / chunks; ++n)
      items += corpus[n].columns.size();
    first_entry[c + 1] = first_entry[c] + items * template_.unigram_count();
  }
  // Sized unwritten (UnzeroedAllocator): the chunks write every entry, and its pages fault in
  // on their threads.
  out.attribute_ids.resize(first_entry[chunks]);
  int32_t* const entries = out.attribute_ids.data();
  try {
    parallel_for(chunks, threads, [&](std::size_t c) {
      Chunk& part = parts[c];
      int32_t* entry = entries + first_entry[c];  // the chunk's next entry
      // The strings of a sentence, interned as one batch (Dictionary::add_all): ids in the same
      // first-seen order as one by one.
      SentenceStrings strings;
      std::size_t freed = 0;  // sentences freed (owned corpus)
      // The arrays' sizes are known: reserved, not grown by doubling (a peak of 1.5 copies).
      std::size_t items = 0, sentences = 0;
      for (std::size_t n = N * c / chunks; n < N * (c + 1) / chunks; ++n, ++sentences)
        items += corpus[n].columns.size();
      part.edge_ids.reserve((items - sentences) * template_.conditioned_bigram_count());
      part.per_item.reserve(items);
      part.edges_per_item.reserve(items);
      part.label_ids.reserve(items);
      part.lengths.reserve(sentences);
      for (std::size_t n = N * c / chunks; n < N * (c + 1) / chunks; ++n) {
        const ColumnSentence& sentence = corpus[n];
        const std::size_t T = sentence.columns.size();
        part.lengths.push_back(static_cast<uint32_t>(T));
        strings.expand(template_, sentence);
        part.attributes.add_all(strings.size(), strings.at(), strings.hashes.data(),
                                strings.ids.data());
        const std::vector<int32_t>& ids = strings.ids;
        for (const auto& columns : sentence.columns)
          part.label_ids.push_back(part.labels.add(columns.back()));
        for (std::size_t t = 0, i = 0; t < T; ++t) {
          const std::size_t state_end = strings.split[2 * t], edge_end = strings.split[2 * t + 1];
          part.per_item.push_back(static_cast<uint32_t>(state_end - i));
          for (; i < state_end; ++i) *entry++ = ids[i];
          part.edges_per_item.push_back(static_cast<uint32_t>(edge_end - i));
          for (; i < edge_end; ++i) part.edge_ids.push_back(ids[i]);
        }
        if (!owned || chunks > 1) continue;
        // One chunk (one thread): the text goes as it is encoded, and the reading thread's heap
        // is trimmed now and then (its freed pages back to the system). CoNLL-2003 NER, one
        // thread: crf_bench's peak resident memory 195 -> 149 MB, with the rest of 22f9d58.
        ColumnSentence& done = (*owned)[n];
        std::vector<std::vector<std::string>>().swap(done.columns);
        std::string().swap(done.source);
        if (++freed % kTrimEvery == 0) trim_heaps();
      }
      SEPTA_CHECK(entry == entries + first_entry[c + 1]);
      // Several chunks: each chunk's text goes when the chunk is done. Freed as it is encoded,
      // the text left holes in the reading thread's heap that the chunk run on that thread
      // filled with its dictionary's strings, and the heap then could not give the pages back
      // (CoNLL-2000 at 16 threads: 20 MB more resident after encoding; peak 173 against 155 MB
      // in crf_bench, POS 195 against 187, NER 177 against 182).
      if (!owned || chunks == 1) return;
      for (std::size_t n = N * c / chunks; n < N * (c + 1) / chunks; ++n) {
        ColumnSentence& done = (*owned)[n];
        std::vector<std::vector<std::string>>().swap(done.columns);
        std::string().swap(done.source);
      }
      trim_heaps();
    });
  } catch (...) {
    out.attribute_ids.resize(entries0);
    throw;
  }
  // Column data has value 1 everywhere: known unit-valued when nothing else was in `out`
  // (and then, without `values`, the values stay empty: all 1).
  if (out.attribute_values.empty()) out.unit_values = true;
  const std::size_t value_tasks = values || !out.attribute_values.empty() ? 1 : 0;
  // The dictionaries merge in chunk order (chunk-local ids -> ids): the attributes' serially
  // or in parallel (merge_in_order), the few labels' serially. The chunks' entries and labels
  // are then written into their own slices of the dataset in parallel.
  std::vector<std::vector<int32_t>> global(chunks);  // [chunks][chunk-local id] -> id
  std::vector<std::vector<int32_t>> label_global(chunks);  // [chunks][chunk-local label] -> id
  std::vector<char> identity(chunks, 0);  // [chunks] 1: the chunk's local ids are its ids
  // From 4 chunks on (and into an empty dictionary), the dictionaries merge in parallel.
  const bool merged = chunks >= 4 && attributes_.size() == 0;
  if (merged) {
    std::vector<Dictionary*> dictionaries;
    for (Chunk& part : parts) dictionaries.push_back(&part.attributes);
    merge_in_order(dictionaries, attributes_, global, threads);
    // The chunks' indexes go before the dataset's arrays are allocated (a lower peak).
    parallel_for(chunks, threads, [&](std::size_t c) { parts[c].attributes = Dictionary(); });
  }
  // Fewer chunks merge one after the other, each chunk's strings looked up in the dictionary
  // so far on all threads (slices of its list; each string there is distinct), the absent ones
  // numbered in chunk order and appended: the ids of adding them in order. The last chunk's
  // append, which only the dictionary needs, runs beside the dataset's writing below. (At 2
  // threads the serial add of the second chunk's strings was 0.027 s of the calling thread's
  // 0.14 s of encoding on CoNLL-2000.)
  std::vector<std::string> last_names;   // [last chunk's strings] (pending append)
  std::vector<uint64_t> last_hashes;     // [last chunk's strings] their hash()
  std::vector<uint32_t> last_absent;     // last chunk's strings to append, in order
  bool append_pending = false;
  for (std::size_t c = 0; c < chunks; ++c) {
    Chunk& part = parts[c];
    if (!merged) {
      global[c].resize(part.attributes.size());
      if (attributes_.size() == 0) {
        // Into an empty dictionary the merge would give every string its chunk-local id: take
        // the chunk's dictionary as it is (one thread: the whole corpus) instead of rehashing.
        for (std::size_t i = 0; i < global[c].size(); ++i) global[c][i] = static_cast<int32_t>(i);
        identity[c] = 1;
        attributes_ = std::move(part.attributes);
      } else {
        std::vector<uint64_t> hashes = part.attributes.hashes();
        std::vector<std::string> names = part.attributes.take_names();
        const std::size_t n = names.size();
        int32_t* ids = global[c].data();
        const std::size_t slices =
            std::max<std::size_t>(1, std::min<std::size_t>(threads, n / 4096 + 1));
        parallel_for(slices, threads, [&](std::size_t k) {
          const std::size_t lo = n * k / slices, hi = n * (k + 1) / slices;
          attributes_.find_all_hashed(
              hi - lo, [&](std::size_t i) { return std::string_view(names[lo + i]); },
              hashes.data() + lo, ids + lo);
        });
        std::vector<uint32_t> absent;
        auto next = static_cast<int32_t>(attributes_.size());
        for (std::size_t i = 0; i < n; ++i)
          if (ids[i] < 0) {
            ids[i] = next++;
            absent.push_back(static_cast<uint32_t>(i));
          }
        if (c + 1 < chunks) {
          attributes_.append_absent(names, hashes, absent);
        } else {
          last_names = std::move(names);
          last_hashes = std::move(hashes);
          last_absent = std::move(absent);
          append_pending = true;
        }
      }
      part.attributes = Dictionary();
    }
    for (const std::string& label : part.labels.names())
      label_global[c].push_back(labels_.add(label));
    first_edge[c + 1] = first_edge[c] + part.edge_ids.size();
    first_item[c + 1] = first_item[c] + part.per_item.size();
  }
  // The other arrays are sized (zeroed, their pages faulted in) on all threads, one array a
  // task (the entries were sized before the chunks ran).
  parallel_for(3, threads, [&](std::size_t k) {
    if (k == 0) {
      out.edge_ids.resize(first_edge[chunks]);
      out.labels.resize(first_item[chunks]);
    } else if (k == 1) {
      out.item_offsets.resize(first_item[chunks] + 1);
      out.edge_offsets.resize(first_item[chunks] + 1);
    } else {
      out.weights.resize(sequences0 + N, 1.0);
      out.sequence_offsets.resize(sequences0 + N + 1);
    }
  });
  // Tasks: the pending append (first, when there is one), the chunks, then the values (1.0
  // everywhere), queued last: one thread (one chunk) allocates them once the chunk's entries
  // are gone, as before, so its peak holds one copy of the entries, not two (CoNLL-2003 NER,
  // 4.7 M entries: 19 MB); over threads they are written beside the last chunks (at 2 threads
  // 0.006 s of the calling thread's on CoNLL-2000, after the writing).
  const std::size_t appends = append_pending ? 1 : 0;
  parallel_for(appends + chunks + value_tasks, threads, [&](std::size_t task) {
    if (task < appends) {
      attributes_.append_absent(last_names, last_hashes, last_absent);
      std::vector<std::string>().swap(last_names);
      return;
    }
    if (task == appends + chunks) {
      out.attribute_values.resize(first_entry[chunks], 1.0f);
      return;
    }
    const std::size_t c = task - appends;
    Chunk& part = parts[c];
    const std::vector<int32_t>& ids = global[c];
    int32_t* attribute_ids = out.attribute_ids.data() + first_entry[c];  // may be empty
    if (!identity[c])  // chunk-local ids -> ids, in place
      for (std::size_t i = 0; i < first_entry[c + 1] - first_entry[c]; ++i)
        attribute_ids[i] = ids[attribute_ids[i]];
    int32_t* edge_ids = out.edge_ids.data() + first_edge[c];
    for (std::size_t i = 0; i < part.edge_ids.size(); ++i) edge_ids[i] = ids[part.edge_ids[i]];
    int32_t* labels = out.labels.data() + first_item[c];
    for (std::size_t i = 0; i < part.label_ids.size(); ++i)
      labels[i] = label_global[c][part.label_ids[i]];
    std::size_t entry = first_entry[c], edge = first_edge[c], item = first_item[c];
    for (std::size_t i = 0; i < part.per_item.size(); ++i) {
      entry += part.per_item[i];
      edge += part.edges_per_item[i];
      ++item;
      out.item_offsets[item] = entry;
      out.edge_offsets[item] = edge;
    }
    item = first_item[c];
    for (std::size_t n = N * c / chunks, k = 0; n < N * (c + 1) / chunks; ++n, ++k) {
      item += part.lengths[k];
      out.sequence_offsets[sequences0 + n + 1] = item;
    }
    parts[c] = Chunk();
  });
}

namespace {

// Attribute values are stored as float: one beyond its range would become infinite.
void check_value(const AttributeSequence& sequence, std::size_t t,
                 const Attribute& attribute) {
  if (in_value_range(attribute.value)) return;
  char value[32];
  std::snprintf(value, sizeof value, "%.17g", attribute.value);
  throw FormatError(item_place(sequence, t) + ": attribute '" + attribute.name + "' has value " +
                    value +
                    ", outside the float range (|value| <= " +
                    kMaxAttributeValueText + ")");
}

}  // namespace

void Encoder::encode_training(const std::vector<AttributeSequence>& corpus, Dataset& out) {
  SEPTA_CHECK(format_ == InputFormat::kAttributes);
  for (std::size_t n = 0; n < corpus.size(); ++n) {
    const AttributeSequence& sequence = corpus[n];
    for (std::size_t t = 0; t < sequence.labels.size(); ++t) {
      for (const Attribute& attribute : sequence.attributes[t]) check_value(sequence, t, attribute);
      for (const Attribute& attribute : sequence.attributes[t])
        out.add_attribute(attributes_.add(attribute.name), static_cast<float>(attribute.value));
      out.end_item(labels_.add(sequence.labels[t]));
    }
    out.end_sequence(sequence.weight);
  }
}

bool Encoder::has_gold_column(const ColumnSentence& sentence) const {
  return sentence.columns.front().size() == columns_;
}

void Encoder::encode(const ColumnSentence& sentence, Dataset& out) const {
  const std::size_t C = sentence.columns.front().size();
  if (C != columns_ && C + 1 != columns_)
    throw FormatError(item_place(sentence, 0) + ": the model expects " +
                      std::to_string(columns_) + " columns (or " + std::to_string(columns_ - 1) +
                      " without the gold label), found " + std::to_string(C));
  const bool gold = C == columns_;
  // Per-thread scratch: after the first sentences, encoding allocates nothing. The strings of
  // the whole sentence are expanded first and then looked up as one batch (Dictionary::find_all).
  thread_local SentenceStrings strings;
  strings.expand(template_, sentence);
  attributes_.find_all(strings.size(), strings.at(), strings.hashes.data(), strings.ids.data());
  const std::vector<int32_t>& ids = strings.ids;  // -1: unknown
  const std::vector<std::size_t>& split = strings.split;
  const std::size_t T = sentence.columns.size();
  for (std::size_t t = 0, i = 0; t < T; ++t) {
    for (; i < split[2 * t]; ++i)
      if (ids[i] >= 0) out.add_attribute(ids[i], 1.0f);
    for (; i < split[2 * t + 1]; ++i)
      if (ids[i] >= 0) out.add_edge_attribute(ids[i]);
    out.end_item(gold ? labels_.find(sentence.columns[t].back()) : -1);
  }
  out.end_sequence(1.0);
}

void Encoder::encode(const AttributeSequence& sequence, Dataset& out) const {
  for (std::size_t t = 0; t < sequence.labels.size(); ++t) {
    for (const Attribute& attribute : sequence.attributes[t]) {
      check_value(sequence, t, attribute);
      const int32_t id = attributes_.find(attribute.name);
      if (id >= 0) out.add_attribute(id, static_cast<float>(attribute.value));
    }
    out.end_item(labels_.find(sequence.labels[t]));
  }
  out.end_sequence(sequence.weight);
}

}  // namespace septa::crf
