#!/usr/bin/env node
/**
 * Runs before `npm start` and `npm test` (npm's pre-scripts): installs the npm packages when
 * node_modules is missing or older than package-lock.json, so each of those commands works on a fresh
 * clone. Plain CommonJS because nothing is installed yet when it runs.
 */
'use strict';
const { createHash } = require('node:crypto');
const { existsSync, readFileSync, writeFileSync } = require('node:fs');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const lock = path.join(root, 'package-lock.json');
const stamp = path.join(root, 'node_modules', '.interaction-data-deps');
const wanted = createHash('sha256').update(readFileSync(lock)).digest('hex');

if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) process.exit(0);

console.error('Installing npm packages (npm ci)…');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const res = spawnSync(npm, ['ci', '--include=dev', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, stdio: 'inherit' });
if (res.status !== 0) {
  console.error('npm ci failed: see the output above.');
  process.exit(res.status ?? 1);
}
writeFileSync(stamp, wanted);
