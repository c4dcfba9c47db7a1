// Reading one rank's part of a column file: the file is cut into B fixed blocks of about equal
// byte size, each moved forward to the next sentence start, so no sentence is ever split and
// the blocks depend only on the file (never on the rank count). Rank r of R reads only the
// bytes of blocks [B r / R, B (r+1) / R).
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "septa/communicator.h"
#include "septa/crf/corpus.h"

namespace septa::crf {

// The first sentence start at or after byte `offset` of a stream of `size` bytes: 0, `size`, or
// the start of a line that follows a blank (spaces, tabs, CR, VT, FF only) line.
uint64_t sentence_start_at_or_after(std::istream& in, uint64_t size, uint64_t offset);

// Blocks [first, end) of rank `rank` out of `ranks` for B blocks.
void rank_blocks(int rank, int ranks, std::size_t blocks, std::size_t& first, std::size_t& end);

// The raw bytes of blocks [first, end) of B of a file.
struct RawShard {
  std::string text;                     // bytes of the blocks
  std::vector<uint64_t> block_offsets;  // [end-first+1] file offsets of the block starts
  uint64_t newlines = 0;                // '\n' bytes in text
};
RawShard read_raw_shard(const std::string& path, std::size_t first, std::size_t end,
                        std::size_t blocks);

// Parses a raw shard whose first byte lies on line `first_line` of the file named `name`, its
// blocks on up to `threads` threads (the same result for any count).
ColumnShard parse_column_shard(const RawShard& raw, const std::string& name, std::size_t first,
                               std::size_t blocks, std::size_t first_line,
                               std::size_t max_line_bytes = kDefaultMaxLineBytes,
                               int threads = 1);

}  // namespace septa::crf
