// A Parquet thread's entry when the service runs from its TypeScript sources: tsx's hooks belong to the
// thread that registered them, so a new thread registers them again before loading the tasks. The
// compiled service loads dist/src/archive/parquetTasks.js directly.
require('tsx/cjs');
module.exports = require('./parquetTasks.ts');
