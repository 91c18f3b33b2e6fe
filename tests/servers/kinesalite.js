#!/usr/bin/env node
'use strict';
// Loopback launcher for kinesalite 3.3.3.
//
// kinesalite's own cli.js binds every interface and has no --host option, so
// this launcher parses the same options and binds 127.0.0.1 only.
//
//   node tests/servers/kinesalite.js [--port N] [--shardLimit N]
//        [--createStreamMs MS] [--deleteStreamMs MS] [--updateStreamMs MS]
//        [--path DIR] [--ssl]
//
// --port 0 (or a missing --port value) lets the OS pick a free port; the
// default is 4567. Once listening, exactly one line `LISTENING <port>` is
// printed to stdout.

const path = require('path');

function resolveFromKinesalite(name) {
  // minimist is a kinesalite dependency; resolve it from kinesalite's own
  // directory so the launcher does not depend on npm's hoisting.
  const kinesaliteDir = path.dirname(require.resolve('kinesalite/package.json'));
  return require(require.resolve(name, { paths: [kinesaliteDir] }));
}

function fail(message) {
  process.stderr.write(`kinesalite launcher: ${message}\n`);
  process.exit(2);
}

const minimist = resolveFromKinesalite('minimist');
const argv = minimist(process.argv.slice(2), {
  string: ['path'],
  boolean: ['ssl', 'help'],
});

if (argv.help) {
  process.stdout.write(
    'Usage: kinesalite.js [--port N] [--shardLimit N] [--createStreamMs MS]\n' +
      '                     [--deleteStreamMs MS] [--updateStreamMs MS] [--path DIR] [--ssl]\n' +
      'Binds 127.0.0.1. --port 0 picks a free port. Prints "LISTENING <port>" when ready.\n'
  );
  process.exit(0);
}

const known = new Set(['_', 'port', 'shardLimit', 'createStreamMs', 'deleteStreamMs',
  'updateStreamMs', 'path', 'ssl', 'help']);
for (const key of Object.keys(argv)) {
  if (!known.has(key)) fail(`unknown option --${key}`);
}
if (argv._.length > 0) fail(`unexpected argument ${argv._[0]}`);

function nonNegativeInt(name, value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} needs a non-negative integer, got ${value}`);
  return n;
}

const port = argv.port === undefined ? 4567 : nonNegativeInt('port', argv.port === true ? 0 : argv.port);
if (port > 65535) fail(`--port out of range: ${port}`);

const options = {};
for (const name of ['shardLimit', 'createStreamMs', 'deleteStreamMs', 'updateStreamMs']) {
  if (argv[name] !== undefined) options[name] = nonNegativeInt(name, argv[name]);
}
if (argv.path) options.path = argv.path;
if (argv.ssl) options.ssl = true;

const kinesalite = require('kinesalite');
const server = kinesalite(options);

server.on('error', (err) => fail(`cannot listen on 127.0.0.1:${port}: ${err.message}`));

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  // Do not wait for keep-alive connections to drain.
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
