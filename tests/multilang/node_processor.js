#!/usr/bin/env node
// A record processor on the official Node.js KCL client library (npm aws-kcl, its lib/kcl only:
// the kcl-bootstrap script, which downloads the Java daemon's jars, is not used). shardline's
// MultiLangDaemon runs it as a child:
//   executableName = node tests/multilang/node_processor.js [--out FILE] [--bench]
//
//   --out FILE  append one JSON line per record and per lifecycle event to FILE (as
//               python_processor.py), written before the batch is checkpointed
//   --bench     decode every record's data and count; write nothing per record
//
// Every batch is checkpointed with checkpointer.checkpoint(callback), i.e. a checkpoint request
// without a sequence number: the daemon checkpoints everything delivered (the library cannot
// send a sub-sequence number). shardEnded checkpoints (SHARD_END); shutdownRequested too.
'use strict';

const fs = require('fs');
const kcl = require('aws-kcl');

let outFd = null;
let bench = false;
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--out') {
    outFd = fs.openSync(process.argv[++i], 'a');
  } else if (process.argv[i] === '--bench') {
    bench = true;
  } else {
    process.stderr.write('unknown argument ' + process.argv[i] + '\n');
    process.exit(2);
  }
}

let shardId = null;
let records = 0;
let bytes = 0;

function event(name, fields) {
  if (outFd === null) return;
  const o = Object.assign({event: name, shardId: shardId, pid: process.pid}, fields || {});
  fs.writeSync(outFd, JSON.stringify(o) + '\n');
}

function checkpointThen(checkpointer, what, done) {
  checkpointer.checkpoint(function (err) {
    if (err) event('checkpointError', {error: String(err), during: what});
    done();
  });
}

const processor = {
  initialize: function (input, completeCallback) {
    shardId = input.shardId;
    event('initialize', {sequenceNumber: input.sequenceNumber,
                         subSequenceNumber: input.subSequenceNumber});
    completeCallback();
  },

  processRecords: function (input, completeCallback) {
    const recs = input.records || [];
    if (bench) {
      for (const r of recs) bytes += Buffer.from(r.data, 'base64').length;
    } else if (outFd !== null && recs.length > 0) {
      let text = '';
      for (const r of recs) {
        text += JSON.stringify({event: 'record', shardId: shardId, pid: process.pid,
                                sequenceNumber: r.sequenceNumber,
                                subSequenceNumber: r.subSequenceNumber,
                                partitionKey: r.partitionKey, data: r.data,
                                approximateArrivalTimestamp: r.approximateArrivalTimestamp}) + '\n';
      }
      fs.writeSync(outFd, text);
    }
    records += recs.length;
    if (recs.length === 0) {
      completeCallback();
      return;
    }
    checkpointThen(input.checkpointer, 'processRecords', completeCallback);
  },

  leaseLost: function (input, completeCallback) {
    event('leaseLost', {records: records});
    completeCallback();
  },

  shardEnded: function (input, completeCallback) {
    event('shardEnded', {records: records});
    checkpointThen(input.checkpointer, 'shardEnded', completeCallback);
  },

  shutdownRequested: function (input, completeCallback) {
    event('shutdownRequested', {records: records});
    checkpointThen(input.checkpointer, 'shutdownRequested', completeCallback);
  },
};

kcl(processor).run();
