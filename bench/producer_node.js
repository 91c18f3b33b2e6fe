// Baseline for the producer benchmark: what a Node.js user does today for aggregation.
// aws-kinesis-agg's RecordAggregator (no per-shard grouping) + @aws-sdk/client-kinesis
// PutRecords in batches of 500 aggregated records, against the same endpoint.
// Prints one JSON line: records/s and CPU microseconds per record.
'use strict';
const { RecordAggregator } = require('aws-kinesis-agg');
const { KinesisClient, PutRecordsCommand } = require('@aws-sdk/client-kinesis');
// The Kinesis client defaults to an HTTP/2 handler (for SubscribeToShard); PutRecords over
// HTTP/1.1 keep-alive is what the other tools use too.
const { NodeHttpHandler } = require('@smithy/node-http-handler');

async function main() {
  const [endpoint, recordsArg, sizeArg] = process.argv.slice(2);
  const records = Number(recordsArg), size = Number(sizeArg);
  const client = new KinesisClient({
    endpoint, region: 'us-east-1', maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpAgent: new (require('http').Agent)({ keepAlive: true }) }),
    credentials: { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' },
  });
  const keys = [];
  for (let i = 0; i < 100000; i++) keys.push(`${(i * 7919 + 1).toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`);
  const data = Buffer.alloc(size, 'x');
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  let pending = [], ok = 0;
  const flush = async () => {
    if (!pending.length) return;
    const batch = pending; pending = [];
    const out = await client.send(new PutRecordsCommand({ StreamName: 'bench', Records: batch }));
    ok += batch.length - (out.FailedRecordCount || 0);
  };
  const encodedRecords = [];
  const aggregator = new RecordAggregator((err, encoded) => {
    if (err) throw err;
    encodedRecords.push(encoded);
  });
  for (let i = 0; i < records; i++) {
    const rec = { partitionKey: keys[i % keys.length], data };
    if (!aggregator.checkIfUserRecordFits(rec)) aggregator.flushBufferedRecords();
    aggregator.addUserRecord(rec);
    while (encodedRecords.length) {
      const e = encodedRecords.shift();
      pending.push({ PartitionKey: e.partitionKey, ExplicitHashKey: e.ExplicitHashKey, Data: e.data });
      if (pending.length === 500) await flush();
    }
  }
  aggregator.flushBufferedRecords();
  for (const e of encodedRecords) pending.push({ PartitionKey: e.partitionKey, ExplicitHashKey: e.ExplicitHashKey, Data: e.data });
  await flush();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  console.log(JSON.stringify({ tool: 'aws-kinesis-agg + @aws-sdk/client-kinesis', records, size,
    seconds: Number(secs.toFixed(3)), recordsPerSecond: Math.round(records / secs),
    cpuMicrosPerRecord: Number((cpuSecs / records * 1e6).toFixed(3)), kinesisRecordsPut: ok }));
}
main().catch((e) => { console.error(e); process.exit(1); });
