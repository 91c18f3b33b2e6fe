// Internal: a record processor that takes a batch in pieces, as the worker decodes it.
//
// A batch of 10,000 user records is 10,000 ConsumerRecords (about 1 MB) when it is handed over
// as one span: written while the aggregates are decoded and read back by the processor, both
// times out of cache. A processor that only walks the records in order (the MultiLangDaemon's,
// which writes them into its message) can take them an aggregate at a time instead, in a few
// hundred records that stay in cache. It is still one batch: the processor acts on it only in
// finish_batch(), exactly as it would in process_records().
#pragma once

#include <cstdint>
#include <span>

#include "shardline/consumer.h"

namespace shardline::detail {

/// The worker calls, on the shard's processing thread, for every batch (a retried batch starts
/// over with begin_batch):
///   begin_batch(data_bytes), add_records(piece) for each piece in order, then
///   finish_batch(in) with in.records empty (the pieces are the batch's records), unless the
///   batch had no records and empty batches are not delivered.
/// The string views of a piece's records stay valid until finish_batch() returns; the
/// ConsumerRecord objects themselves only during add_records().
class PiecewiseRecordProcessor : public RecordProcessor {
 public:
  /// `data_bytes`: the batch's Kinesis record data, a hint for sizing.
  virtual void begin_batch(std::int64_t data_bytes) noexcept = 0;
  virtual void add_records(std::span<const ConsumerRecord> piece) noexcept = 0;
  /// As process_records() for all the pieces since begin_batch().
  virtual Status finish_batch(const ProcessRecordsInput& in) = 0;
};

}  // namespace shardline::detail
