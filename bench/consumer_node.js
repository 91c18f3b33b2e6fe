// Baseline for the consumer benchmark: what a Node.js user does today without the KCL's
// MultiLangDaemon: @aws-sdk/client-kinesis GetShardIterator + GetRecords in a loop on one
// shard, aws-kinesis-agg deaggregateSync (MD5 checked) on every record, against the same stub.
// No leases, no checkpoints: a lower bound on the work the worker does.
// Prints one JSON line: user records/s and CPU microseconds per user record.
'use strict';
const agg = require('aws-kinesis-agg');
const { KinesisClient, GetShardIteratorCommand, GetRecordsCommand } = require('@aws-sdk/client-kinesis');
const { NodeHttpHandler } = require('@smithy/node-http-handler');

async function main() {
  const [endpoint, secondsArg] = process.argv.slice(2);
  const seconds = Number(secondsArg || 10);
  const client = new KinesisClient({
    endpoint, region: 'us-east-1', maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpAgent: new (require('http').Agent)({ keepAlive: true }) }),
    credentials: { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' },
  });
  let it = (await client.send(new GetShardIteratorCommand({
    StreamName: 'bench', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  let users = 0;
  while (Number(process.hrtime.bigint() - t0) / 1e9 < seconds) {
    const out = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10000 }));
    for (const r of out.Records) {
      agg.deaggregateSync({ data: Buffer.from(r.Data).toString('base64'), partitionKey: r.PartitionKey,
        sequenceNumber: r.SequenceNumber }, true, (err, recs) => {
        if (err) throw err;
        users += recs.length;
      });
    }
    it = out.NextShardIterator;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  console.log(JSON.stringify({ tool: 'aws-kinesis-agg + @aws-sdk/client-kinesis', userRecords: users,
    seconds: Number(secs.toFixed(3)), recordsPerSec: Math.round(users / secs),
    cpuUsPerRecord: Number((cpuSecs / users * 1e6).toFixed(3)) }));
}
main().catch((e) => { console.error(e); process.exit(1); });
