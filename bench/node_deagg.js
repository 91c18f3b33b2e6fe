// The baseline for `shardline deagg`: the awslabs Node.js library aws-kinesis-agg
// deaggregating the same file of base64 lines, with MD5 checking on (computeChecksums=true),
// writing the same kind of JSON line per user record.
'use strict';
const fs = require('fs');
const readline = require('readline');
const agg = require('aws-kinesis-agg');

const input = fs.createReadStream(process.argv[2]);
const rl = readline.createInterface({ input, crlfDelay: Infinity });
const out = [];
let pending = 0;
function flush(force) {
  if (out.length > 2000 || (force && out.length)) {
    process.stdout.write(out.join(''));
    out.length = 0;
  }
}
rl.on('line', (line) => {
  agg.deaggregateSync({ data: line, partitionKey: 'a', sequenceNumber: '1' }, true, (err, recs) => {
    if (err) { process.stderr.write(String(err) + '\n'); return; }
    for (const r of recs) {
      out.push(JSON.stringify({
        partitionKey: r.partitionKey, explicitHashKey: r.explicitPartitionKey || null,
        data: r.data, subSequenceNumber: r.subSequenceNumber, aggregated: true,
      }) + '\n');
    }
    pending++;
    flush(false);
  });
});
rl.on('close', () => flush(true));
