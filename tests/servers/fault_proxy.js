#!/usr/bin/env node
'use strict';
// Failure-injecting HTTP proxy for the local Kinesis / DynamoDB emulators.
// Node core only. Binds 127.0.0.1. See docs in `--help` and the reference
// (local-test-servers.md, "Failure-injection proxy").
//
// Faults, decided per request with a seeded PRNG (reproducible runs):
//   * transport level, every proxied request:
//       --blackhole               accept the request, never answer
//       --reset-probability p     destroy the client socket without answering
//       --latency-ms N            wait N ms before forwarding / answering
//   * JSON (application/x-amz-json-1.0 / 1.1, application/json) only; CBOR and
//     everything else passes through untouched:
//       --throttle-probability p  data-plane ops: HTTP 400
//                                 ProvisionedThroughputExceededException, not forwarded
//       --error500-probability p  data-plane ops: HTTP 500 InternalFailure, not forwarded
//       --record-failure-probability p
//                                 Kinesis PutRecords: fail single entries; failed entries
//                                 are removed from the forwarded request (not written), and
//                                 re-inserted as ProvisionedThroughputExceededException in
//                                 the response, FailedRecordCount fixed up. All entries
//                                 failed: HTTP 200 without forwarding.
//
// Control API (never subject to faults):
//   GET  /__proxy/config         current settings (JSON)
//   POST /__proxy/config         JSON object with any subset of the settings; applied
//                                atomically (all or nothing), answers the new settings
//   GET  /__proxy/stats          counters of requests and injected faults (JSON)
//   POST /__proxy/stats/reset    zero the counters
//   GET  /__proxy/health         {"ok":true}

const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { parseArgs } = require('util');

// ---------------------------------------------------------------------------
// Constants

const KINESIS_DATA_PLANE = ['PutRecord', 'PutRecords', 'GetRecords', 'GetShardIterator'];
const DYNAMODB_DATA_PLANE = ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Scan', 'Query'];
const DYNAMODB_TYPE_PREFIX = 'com.amazonaws.dynamodb.v20120810#';
const MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_PUT_RECORDS_ENTRIES = 500;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
  'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

// ---------------------------------------------------------------------------
// Settings

// name in JSON -> { cli: option name, kind }
const SETTINGS = {
  recordFailureProbability: { cli: 'record-failure-probability', kind: 'probability', def: 0 },
  throttleProbability: { cli: 'throttle-probability', kind: 'probability', def: 0 },
  error500Probability: { cli: 'error500-probability', kind: 'probability', def: 0 },
  resetProbability: { cli: 'reset-probability', kind: 'probability', def: 0 },
  latencyMs: { cli: 'latency-ms', kind: 'nonNegativeInt', def: 0 },
  blackhole: { cli: 'blackhole', kind: 'boolean', def: false },
  seed: { cli: 'seed', kind: 'int', def: 1 },
  operations: { cli: 'operations', kind: 'operations', def: null },
  verbose: { cli: 'verbose', kind: 'boolean', def: false },
};
const CLI_TO_SETTING = Object.fromEntries(Object.entries(SETTINGS).map(([k, v]) => [v.cli, k]));

function usage() {
  return [
    'Usage: fault_proxy.js --upstream URL [options]',
    '',
    '  --upstream URL                     emulator to forward to (http:// or https://), required',
    '  --port N                           listen port on 127.0.0.1 (default 4667, 0 = free port)',
    '  --seed N                           PRNG seed (default 1)',
    '  --record-failure-probability p     per-entry PutRecords failure probability (default 0)',
    '  --throttle-probability p           whole-call 400 throttle probability (default 0)',
    '  --error500-probability p           HTTP 500 InternalFailure probability (default 0)',
    '  --reset-probability p              destroy the client socket without answering (default 0)',
    '  --latency-ms N                     delay every proxied request by N ms (default 0)',
    '  --blackhole                        accept requests and never answer',
    '  --operations A,B,...               operations throttles/500s apply to',
    '                                     (default: the data-plane operations)',
    '  --verbose                          log every injected fault to stderr',
    '',
    'Prints "LISTENING <port>" on stdout once listening.',
    'Control: GET|POST /__proxy/config, GET /__proxy/stats, POST /__proxy/stats/reset',
    '',
  ].join('\n');
}

class SettingError extends Error {}

// Validates one setting value; `fromCli` means the value is a string.
function coerceSetting(name, value, fromCli) {
  const spec = SETTINGS[name];
  if (!spec) throw new SettingError(`unknown setting ${JSON.stringify(name)}`);
  switch (spec.kind) {
    case 'probability': {
      const n = fromCli ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 1 ||
          (fromCli && String(value).trim() === '')) {
        throw new SettingError(`${name} must be a number in [0, 1], got ${JSON.stringify(value)}`);
      }
      return n;
    }
    case 'nonNegativeInt': {
      const n = fromCli ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 3600000 ||
          (fromCli && String(value).trim() === '')) {
        throw new SettingError(`${name} must be an integer in [0, 3600000], got ${JSON.stringify(value)}`);
      }
      return n;
    }
    case 'int': {
      const n = fromCli ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || (fromCli && String(value).trim() === '')) {
        throw new SettingError(`${name} must be an integer, got ${JSON.stringify(value)}`);
      }
      return n;
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw new SettingError(`${name} must be true or false`);
      return value;
    case 'operations': {
      if (value === null) return null;
      const list = fromCli ? String(value).split(',').map((s) => s.trim()).filter(Boolean) : value;
      if (!Array.isArray(list) || !list.every((s) => typeof s === 'string' && /^[A-Za-z]+$/.test(s))) {
        throw new SettingError(`${name} must be null or a list of operation names`);
      }
      return list.slice();
    }
    default:
      throw new SettingError(`internal: bad kind for ${name}`);
  }
}

function parseCommandLine(args) {
  const options = { upstream: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean' } };
  for (const spec of Object.values(SETTINGS)) {
    options[spec.cli] = { type: spec.kind === 'boolean' ? 'boolean' : 'string' };
  }
  const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
  if (values.help) {
    process.stdout.write(usage());
    process.exit(0);
  }
  if (!values.upstream) throw new SettingError('--upstream URL is required');
  let upstream;
  try {
    upstream = new URL(values.upstream);
  } catch (err) {
    throw new SettingError(`--upstream: invalid URL ${JSON.stringify(values.upstream)}`);
  }
  if (upstream.protocol !== 'http:' && upstream.protocol !== 'https:') {
    throw new SettingError('--upstream must be an http:// or https:// URL');
  }
  let port = 4667;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (values.port.trim() === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new SettingError(`--port must be an integer in [0, 65535], got ${JSON.stringify(values.port)}`);
    }
  }
  const settings = {};
  for (const [name, spec] of Object.entries(SETTINGS)) {
    const raw = values[spec.cli];
    settings[name] = raw === undefined ? spec.def : coerceSetting(name, raw, spec.kind !== 'boolean');
  }
  return { upstream, port, settings };
}

// ---------------------------------------------------------------------------
// Seeded PRNG: sfc32 seeded through splitmix32, uniform doubles in [0, 1).

function makePrng(seed) {
  let s = (Number(BigInt.asUintN(32, BigInt(seed))) ^ 0x9e3779b9) >>> 0;
  const splitmix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix(), b = splitmix(), c = splitmix(), d = splitmix();
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) next();
  return () => next() / 4294967296;
}

// ---------------------------------------------------------------------------
// CRC32 (for x-amz-crc32 on DynamoDB responses the proxy writes or rewrites)

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------
// State

let config;
let upstreamUrl;
let random;
const stats = newStats();
const heldRequests = new Set(); // blackholed requests, destroyed on shutdown

function newStats() {
  return {
    requests: 0, // proxied requests (control requests excluded)
    forwarded: 0,
    passedThroughUntouched: 0, // non-JSON, CBOR, malformed JSON, no X-Amz-Target...
    malformedJson: 0,
    injected: 0, // total injected faults (each kind below counts once per event)
    throttles: 0,
    errors500: 0,
    resets: 0,
    blackholed: 0,
    delayed: 0,
    recordFailures: 0, // injected per-entry PutRecords failures
    putRecordsWithInjectedFailures: 0,
    putRecordsAllFailed: 0, // answered without forwarding
    upstreamErrors: 0,
    clientAborts: 0,
    byOperation: {}, // op -> { requests, throttles, errors500, resets, recordFailures }
  };
}

function resetStats() {
  const fresh = newStats();
  for (const key of Object.keys(stats)) delete stats[key];
  Object.assign(stats, fresh);
}

function countOp(op, field, n = 1) {
  if (!op) return;
  const entry = stats.byOperation[op] ||
    (stats.byOperation[op] = { requests: 0, throttles: 0, errors500: 0, resets: 0, recordFailures: 0 });
  entry[field] += n;
}

function log(message) {
  if (config.verbose) process.stderr.write(`fault_proxy: ${message}\n`);
}

function chance(p) {
  // Draw only when the fault is enabled, so that a disabled fault does not
  // shift the sequence seen by the others; p = 1 always fires.
  if (p <= 0) return false;
  if (p >= 1) return true;
  return random() < p;
}

// ---------------------------------------------------------------------------
// Helpers

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(Object.assign(new Error('request body too large'), { tooLarge: true }));
        req.pause();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(Object.assign(new Error('client aborted'), { aborted: true })));
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function isGone(req, res) {
  return res.destroyed || res.writableEnded || req.socket.destroyed;
}

function parseJsonSafe(buf) {
  try {
    return { ok: true, value: JSON.parse(buf.toString('utf8')) };
  } catch (err) {
    return { ok: false };
  }
}

function mediaType(headers) {
  return String(headers['content-type'] || '').split(';')[0].trim().toLowerCase();
}

function isJsonMedia(type) {
  return type === 'application/x-amz-json-1.0' || type === 'application/x-amz-json-1.1' ||
    type === 'application/json';
}

// "Kinesis_20131202.PutRecords" -> { service: 'kinesis', op: 'PutRecords' }
function parseTarget(headers) {
  const target = String(headers['x-amz-target'] || '');
  const dot = target.lastIndexOf('.');
  if (dot <= 0 || dot === target.length - 1) return null;
  const prefix = target.slice(0, dot);
  const op = target.slice(dot + 1);
  let service = 'other';
  if (/^Kinesis_/i.test(prefix)) service = 'kinesis';
  else if (/^DynamoDB_/i.test(prefix)) service = 'dynamodb';
  return { service, op };
}

function faultApplies(target) {
  if (!target || target.service === 'other') return false;
  if (config.operations) return config.operations.includes(target.op);
  const list = target.service === 'dynamodb' ? DYNAMODB_DATA_PLANE : KINESIS_DATA_PLANE;
  return list.includes(target.op);
}

function resetSocket(req) {
  const socket = req.socket;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

function sendJson(res, status, obj, extraHeaders = {}) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': body.length,
    ...extraHeaders,
  });
  res.end(body);
}

// Injected AWS-style error (not forwarded upstream).
function sendAwsError(res, requestType, target, status, name, message) {
  const dynamo = target && target.service === 'dynamodb';
  const type = dynamo ? DYNAMODB_TYPE_PREFIX + name : name;
  const body = Buffer.from(JSON.stringify({ __type: type, message }));
  const contentType = requestType.startsWith('application/x-amz-json-')
    ? requestType : (dynamo ? 'application/x-amz-json-1.0' : 'application/x-amz-json-1.1');
  const headers = {
    'Content-Type': contentType,
    'Content-Length': body.length,
    'x-amzn-RequestId': crypto.randomUUID(),
    'x-amzn-ErrorType': name,
  };
  if (dynamo) headers['x-amz-crc32'] = String(crc32(body));
  res.writeHead(status, headers);
  res.end(body);
}

function forwardHeaders(headers, bodyLength, overrides = {}) {
  const out = {};
  for (const [key, value] of Object.entries(headers)) {
    if (HOP_BY_HOP.has(key) || key === 'content-length' || key === 'expect') continue;
    out[key] = value;
  }
  out['content-length'] = String(bodyLength);
  return Object.assign(out, overrides);
}

function responseHeaders(rawHeaders, skip) {
  // Keep the upstream's header-name spelling (rawHeaders) but drop hop-by-hop ones.
  // Returns a flat [name, value, name, value, ...] list, as res.writeHead accepts.
  const out = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const lower = rawHeaders[i].toLowerCase();
    if (HOP_BY_HOP.has(lower) || (skip && skip.has(lower))) continue;
    out.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  return out;
}

// Keep-alive to the upstream. A `timeout` is needed for Node to honour the
// emulators' `Keep-Alive: timeout=5` hint and drop idle sockets before they do.
const agentOptions = { keepAlive: true, maxSockets: 64, timeout: 60000 };
const httpAgent = new http.Agent(agentOptions);
const httpsAgent = new https.Agent({ ...agentOptions, rejectUnauthorized: false });

// Sends the request upstream. Resolves with the upstream response (not yet consumed).
// A request that fails on a reused keep-alive socket before any answer (the
// upstream closed the idle socket at the same moment) is retried once on a
// fresh connection: the upstream never saw it.
function upstreamRequest(req, body, headerOverrides, onClientGone, retried = false) {
  return new Promise((resolve, reject) => {
    const base = upstreamUrl.pathname.replace(/\/+$/, '');
    const isHttps = upstreamUrl.protocol === 'https:';
    const upReq = (isHttps ? https : http).request({
      protocol: upstreamUrl.protocol,
      hostname: upstreamUrl.hostname,
      port: upstreamUrl.port || (isHttps ? 443 : 80),
      method: req.method,
      path: base + req.url,
      headers: forwardHeaders(req.headers, body.length, headerOverrides),
      agent: isHttps ? httpsAgent : httpAgent,
    });
    let answered = false;
    let clientGone = false;
    upReq.on('response', (upRes) => {
      answered = true;
      resolve(upRes);
    });
    upReq.on('error', (err) => {
      if (!answered && !retried && !clientGone && upReq.reusedSocket &&
          (err.code === 'ECONNRESET' || err.code === 'EPIPE')) {
        resolve(upstreamRequest(req, body, headerOverrides, onClientGone, true));
        return;
      }
      reject(err);
    });
    onClientGone(() => {
      clientGone = true;
      upReq.destroy();
    });
    upReq.end(body);
  });
}

function readStream(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
    stream.on('aborted', () => reject(new Error('upstream response aborted')));
  });
}

// ---------------------------------------------------------------------------
// Proxying

async function handleProxied(req, res) {
  stats.requests++;
  const cleanups = [];
  const onClientGone = (fn) => cleanups.push(fn);
  res.on('close', () => {
    if (!res.writableFinished) {
      for (const fn of cleanups) fn();
    }
  });

  const requestType = mediaType(req.headers);
  const target = parseTarget(req.headers);
  const op = target ? target.op : null;
  if (op) countOp(op, 'requests');

  let body;
  try {
    body = await readBody(req);
  } catch (err) {
    if (err.tooLarge) {
      sendJson(res, 413, { __type: 'ProxyRequestTooLarge', message: 'request body exceeds proxy limit' },
        { Connection: 'close' });
    } else {
      stats.clientAborts++;
    }
    return;
  }

  // Transport-level faults: blackhole, reset, latency.
  if (config.blackhole) {
    stats.blackholed++;
    stats.injected++;
    log(`blackhole ${op || req.method + ' ' + req.url}`);
    heldRequests.add(req);
    req.socket.on('close', () => heldRequests.delete(req));
    return;
  }
  if (chance(config.resetProbability)) {
    stats.resets++;
    stats.injected++;
    countOp(op, 'resets');
    log(`reset ${op || req.method + ' ' + req.url}`);
    resetSocket(req);
    return;
  }
  if (config.latencyMs > 0) {
    stats.delayed++;
    await sleep(config.latencyMs);
    if (isGone(req, res)) {
      stats.clientAborts++;
      return;
    }
  }

  const json = isJsonMedia(requestType) && target !== null;

  // Whole-call faults on the data plane.
  if (json && faultApplies(target)) {
    if (chance(config.throttleProbability)) {
      stats.throttles++;
      stats.injected++;
      countOp(op, 'throttles');
      log(`throttle ${op}`);
      const message = target.service === 'dynamodb'
        ? 'The level of configured provisioned throughput for the table was exceeded. ' +
          'Consider increasing your provisioning level with the UpdateTable API.'
        : 'Rate exceeded';
      sendAwsError(res, requestType, target, 400, 'ProvisionedThroughputExceededException', message);
      return;
    }
    if (chance(config.error500Probability)) {
      stats.errors500++;
      stats.injected++;
      countOp(op, 'errors500');
      log(`500 ${op}`);
      sendAwsError(res, requestType, target, 500, 'InternalFailure',
        'The request processing has failed because of an unknown error, exception or failure.');
      return;
    }
  }

  // Per-record PutRecords failures.
  if (json && target.service === 'kinesis' && op === 'PutRecords' && config.recordFailureProbability > 0) {
    const parsed = parseJsonSafe(body);
    if (!parsed.ok) stats.malformedJson++;
    const records = parsed.ok && parsed.value && typeof parsed.value === 'object' &&
      !Array.isArray(parsed.value) ? parsed.value.Records : undefined;
    // Leave requests the upstream should reject (empty, > 500 entries) untouched, so its
    // validation errors are preserved.
    if (Array.isArray(records) && records.length > 0 && records.length <= MAX_PUT_RECORDS_ENTRIES) {
      const failed = records.map(() => chance(config.recordFailureProbability));
      const failedCount = failed.filter(Boolean).length;
      if (failedCount > 0) {
        await putRecordsWithFailures(req, res, requestType, target, parsed.value, failed, failedCount,
          onClientGone);
        return;
      }
    }
  }

  await passThrough(req, res, body, target, json, onClientGone);
}

function failedEntry() {
  return { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'Rate exceeded' };
}

async function putRecordsWithFailures(req, res, requestType, target, request, failed, failedCount,
  onClientGone) {
  const total = failed.length;
  stats.recordFailures += failedCount;
  stats.putRecordsWithInjectedFailures++;
  stats.injected++;
  countOp('PutRecords', 'recordFailures', failedCount);
  log(`PutRecords: failing ${failedCount}/${total} entries`);

  if (failedCount === total) {
    stats.putRecordsAllFailed++;
    const out = Buffer.from(JSON.stringify({ FailedRecordCount: total, Records: failed.map(failedEntry) }));
    res.writeHead(200, {
      'Content-Type': requestType.startsWith('application/x-amz-json-') ? requestType
        : 'application/x-amz-json-1.1',
      'Content-Length': out.length,
      'x-amzn-RequestId': crypto.randomUUID(),
    });
    res.end(out);
    return;
  }

  const kept = request.Records.filter((_, i) => !failed[i]);
  const forwardBody = Buffer.from(JSON.stringify({ ...request, Records: kept }));
  let upRes;
  try {
    // identity encoding: the response has to be parsed and rewritten.
    upRes = await upstreamRequest(req, forwardBody, { 'accept-encoding': 'identity' }, onClientGone);
  } catch (err) {
    return upstreamFailed(req, res, err);
  }
  stats.forwarded++;
  let upBody;
  try {
    upBody = await readStream(upRes);
  } catch (err) {
    return upstreamFailed(req, res, err);
  }
  if (isGone(req, res)) return;

  const parsed = upRes.statusCode === 200 ? parseJsonSafe(upBody) : { ok: false };
  const upRecords = parsed.ok && parsed.value && Array.isArray(parsed.value.Records)
    ? parsed.value.Records : null;
  if (!upRecords || upRecords.length !== kept.length) {
    // Upstream error (or an unexpected answer): hand it back as it is; the call failed as a whole.
    res.writeHead(upRes.statusCode, upRes.statusMessage,
      responseHeaders(upRes.rawHeaders, new Set(['content-length'])).concat(['Content-Length', String(upBody.length)]));
    res.end(upBody);
    return;
  }
  let next = 0;
  const merged = failed.map((isFailed) => (isFailed ? failedEntry() : upRecords[next++]));
  const failedTotal = merged.filter((r) => r && r.ErrorCode != null).length;
  const out = Buffer.from(JSON.stringify({ ...parsed.value, FailedRecordCount: failedTotal, Records: merged }));
  const headers = responseHeaders(upRes.rawHeaders, new Set(['content-length', 'x-amz-crc32', 'content-encoding']));
  headers.push('Content-Length', String(out.length));
  if (upRes.headers['x-amz-crc32'] !== undefined) headers.push('x-amz-crc32', String(crc32(out)));
  res.writeHead(200, upRes.statusMessage, headers);
  res.end(out);
}

async function passThrough(req, res, body, target, json, onClientGone) {
  if (!json) stats.passedThroughUntouched++;
  let upRes;
  try {
    upRes = await upstreamRequest(req, body, {}, onClientGone);
  } catch (err) {
    return upstreamFailed(req, res, err);
  }
  stats.forwarded++;
  if (isGone(req, res)) {
    upRes.destroy();
    return;
  }
  res.writeHead(upRes.statusCode, upRes.statusMessage, responseHeaders(upRes.rawHeaders));
  upRes.on('aborted', () => res.destroy());
  upRes.on('error', () => res.destroy());
  upRes.pipe(res);
}

function upstreamFailed(req, res, err) {
  if (isGone(req, res)) return;
  stats.upstreamErrors++;
  process.stderr.write(`fault_proxy: upstream error: ${err.message}\n`);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, 502, { __type: 'ProxyUpstreamError', message: `upstream ${upstreamUrl.origin}: ${err.message}` });
}

// ---------------------------------------------------------------------------
// Control API

function publicConfig() {
  return { upstream: upstreamUrl.href, ...config };
}

// Applies a JSON settings object atomically. Accepts camelCase names and the CLI names.
function applyConfig(obj) {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new SettingError('body must be a JSON object');
  }
  const next = { ...config };
  let reseed = false;
  for (const [key, value] of Object.entries(obj)) {
    const name = SETTINGS[key] ? key : CLI_TO_SETTING[key];
    if (!name) throw new SettingError(`unknown setting ${JSON.stringify(key)}`);
    next[name] = coerceSetting(name, value, false);
    if (name === 'seed') reseed = true;
  }
  config = next;
  if (reseed) random = makePrng(config.seed);
}

async function handleControl(req, res, path) {
  let body;
  try {
    body = await readBody(req);
  } catch (err) {
    if (!err.aborted) sendJson(res, 413, { error: err.message });
    return;
  }
  if (path === '/__proxy/config' && req.method === 'GET') return sendJson(res, 200, publicConfig());
  if (path === '/__proxy/config' && (req.method === 'POST' || req.method === 'PUT')) {
    const parsed = body.length === 0 ? { ok: true, value: {} } : parseJsonSafe(body);
    if (!parsed.ok) return sendJson(res, 400, { error: 'body is not valid JSON' });
    try {
      applyConfig(parsed.value);
    } catch (err) {
      if (err instanceof SettingError) return sendJson(res, 400, { error: err.message });
      throw err;
    }
    log(`config ${JSON.stringify(config)}`);
    return sendJson(res, 200, publicConfig());
  }
  if (path === '/__proxy/stats' && req.method === 'GET') return sendJson(res, 200, stats);
  if (path === '/__proxy/stats/reset' && req.method === 'POST') {
    resetStats();
    return sendJson(res, 200, stats);
  }
  if (path === '/__proxy/health' && req.method === 'GET') return sendJson(res, 200, { ok: true });
  return sendJson(res, 404, { error: `no control endpoint ${req.method} ${path}` });
}

// ---------------------------------------------------------------------------
// Main

function handle(req, res) {
  const path = req.url.split('?')[0];
  const work = path.startsWith('/__proxy/') ? handleControl(req, res, path) : handleProxied(req, res);
  work.catch((err) => {
    process.stderr.write(`fault_proxy: internal error: ${err && err.stack ? err.stack : err}\n`);
    if (!res.headersSent && !res.destroyed) {
      sendJson(res, 500, { __type: 'ProxyInternalError', message: String(err && err.message) });
    } else {
      res.destroy();
    }
  });
}

function main() {
  let parsed;
  try {
    parsed = parseCommandLine(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fault_proxy: ${err.message}\n\n${usage()}`);
    process.exit(2);
  }
  upstreamUrl = parsed.upstream;
  config = parsed.settings;
  random = makePrng(config.seed);

  const server = http.createServer(handle);
  server.keepAliveTimeout = 5000;
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  server.on('error', (err) => {
    process.stderr.write(`fault_proxy: cannot listen on 127.0.0.1:${parsed.port}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(parsed.port, '127.0.0.1', () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
    process.stderr.write(`fault_proxy: forwarding to ${upstreamUrl.href} ` +
      `with ${JSON.stringify(config)}\n`);
  });

  const shutdown = () => {
    for (const req of heldRequests) req.socket.destroy();
    server.close(() => process.exit(0));
    if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main();
