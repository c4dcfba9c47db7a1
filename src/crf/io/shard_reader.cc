#include "crf/io/shard_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>

#include "crf/parallel/ordered_parallel.h"
#include "septa/error.h"

namespace septa::crf {
namespace {

constexpr std::size_t kChunk = 1 << 16;

bool blank_byte(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Reads [begin, end) of the stream into `out`.
void read_at(std::istream& in, uint64_t begin, uint64_t end, std::string& out) {
  out.resize(end - begin);
  in.clear();
  in.seekg(static_cast<std::streamoff>(begin));
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (static_cast<uint64_t>(in.gcount()) != end - begin) throw IoError("short read");
}

uint64_t file_size(std::istream& in) {
  in.clear();
  in.seekg(0, std::ios::end);
  return static_cast<uint64_t>(in.tellg());
}

}  // namespace

uint64_t sentence_start_at_or_after(std::istream& in, uint64_t size, uint64_t offset) {
  if (offset == 0) return 0;
  if (offset >= size) return size;
  // q: start of the line holding byte offset-1 (after the last '\n' before it).
  uint64_t q = 0;
  std::string chunk;
  for (uint64_t end = offset - 1; end > 0;) {
    const uint64_t begin = end > kChunk ? end - kChunk : 0;
    read_at(in, begin, end, chunk);
    const std::size_t nl = chunk.rfind('\n');
    if (nl != std::string::npos) {
      q = begin + nl + 1;
      break;
    }
    end = begin;
  }
  // From q, line by line: the first line end whose line is blank. That end is at or after
  // offset - 1, so the next line starts at or after offset.
  bool blank = true;
  for (uint64_t p = q; p < size;) {
    const uint64_t end = std::min(size, p + kChunk);
    read_at(in, p, end, chunk);
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      if (chunk[i] == '\n') {
        if (blank) return p + i + 1;
        blank = true;
      } else if (!blank_byte(chunk[i])) {
        blank = false;
      }
    }
    p = end;
  }
  return size;
}

void rank_blocks(int rank, int ranks, std::size_t blocks, std::size_t& first, std::size_t& end) {
  first = blocks * static_cast<std::size_t>(rank) / static_cast<std::size_t>(ranks);
  end = blocks * static_cast<std::size_t>(rank + 1) / static_cast<std::size_t>(ranks);
}

RawShard read_raw_shard(const std::string& path, std::size_t first, std::size_t end,
                        std::size_t blocks) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open for reading: " + std::strerror(errno));
  RawShard raw;
  try {
    const uint64_t size = file_size(in);
    for (std::size_t b = first; b <= end; ++b) {
      // Nominal start size * b / B without overflow for any file size.
      const uint64_t nominal = b == blocks ? size
                                           : size / blocks * b + size % blocks * b / blocks;
      raw.block_offsets.push_back(sentence_start_at_or_after(in, size, nominal));
    }
    read_at(in, raw.block_offsets.front(), raw.block_offsets.back(), raw.text);
  } catch (const IoError& e) {
    throw IoError(path + ": read error (" + e.what() + ")");
  }
  raw.newlines = static_cast<uint64_t>(std::count(raw.text.begin(), raw.text.end(), '\n'));
  return raw;
}

/*
 * The blocks parse independently (each from its own first line number: the newlines before it
 * counted first), on up to `threads` threads, and join in block order: the same sentences for
 * any thread count. An error is the one the first failing block in file order gives, as when
 * they are parsed one after the other.
 */
ColumnShard parse_column_shard(const RawShard& raw, const std::string& name, std::size_t first,
                               std::size_t blocks, std::size_t first_line,
                               std::size_t max_line_bytes, int threads) {
  ColumnShard shard;
  shard.first_block = first;
  shard.total_blocks = blocks;
  shard.block_bounds.push_back(0);
  const uint64_t base = raw.block_offsets.front();
  const std::size_t K = raw.block_offsets.size() - 1;  // blocks of this shard
  std::vector<std::size_t> line(K, first_line);       // [K] first line of each block
  for (std::size_t k = 1; k < K; ++k)
    line[k] = line[k - 1] + static_cast<std::size_t>(std::count(
                                raw.text.begin() + (raw.block_offsets[k - 1] - base),
                                raw.text.begin() + (raw.block_offsets[k] - base), '\n'));
  std::vector<std::vector<ColumnSentence>> parsed(K);  // [K] sentences of each block
  std::vector<std::exception_ptr> errors(K);
  parallel_for(K, threads, [&](std::size_t k) {
    try {
      const std::size_t begin = raw.block_offsets[k] - base;
      const std::size_t length = raw.block_offsets[k + 1] - raw.block_offsets[k];
      std::istringstream in(raw.text.substr(begin, length));
      parsed[k] = read_columns(in, name, 1, line[k], max_line_bytes);
    } catch (...) {
      errors[k] = std::current_exception();
    }
  });
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
  std::size_t N = 0;
  for (const auto& sentences : parsed) N += sentences.size();
  shard.sentences.reserve(N);
  for (std::vector<ColumnSentence>& sentences : parsed) {
    for (ColumnSentence& sentence : sentences) shard.sentences.push_back(std::move(sentence));
    std::vector<ColumnSentence>().swap(sentences);
    shard.block_bounds.push_back(shard.sentences.size());
  }
  return shard;
}

ColumnShard read_column_shard(const std::string& path, std::size_t blocks, Communicator& comm,
                              std::size_t max_line_bytes, int threads) {
  std::size_t first = 0, end = 0;
  rank_blocks(comm.rank(), comm.size(), blocks, first, end);
  RawShard raw = read_raw_shard(path, first, end, blocks);
  const std::vector<std::string> counts = comm.allgather(std::to_string(raw.newlines));
  std::size_t first_line = 1;
  for (int r = 0; r < comm.rank(); ++r) first_line += std::stoull(counts[r]);
  ColumnShard shard =
      parse_column_shard(raw, path, first, blocks, first_line, max_line_bytes, threads);
  return shard;
}

}  // namespace septa::crf
