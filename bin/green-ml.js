#!/usr/bin/env node
'use strict';
// Compiled by `npm run build` (also run by `npm ci` through the prepare script).
require('../dist/shared/cli/main.js')
  .main(process.argv)
  .then((code) => {
    process.exitCode = code;
  });
